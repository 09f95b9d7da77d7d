"""Lint the dbt models with sqlfluff's dbt templater, using a throwaway DuckDB profile.

Run as `python -m meterline.lint_sql`; exits with sqlfluff's exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from meterline.config import WarehouseTarget
from meterline.dbt import DBT_PROJECT_DIR, profile_yaml


def main() -> int:
    root = DBT_PROJECT_DIR.parent
    with tempfile.TemporaryDirectory(prefix="meterline-sqlfluff-") as tmp:
        target = WarehouseTarget(url="duckdb:///lint", kind="duckdb", path=Path(tmp) / "lint.duckdb")
        (Path(tmp) / "profiles.yml").write_text(profile_yaml(target), encoding="utf-8")
        env = {**os.environ, "DBT_PROFILES_DIR": tmp}
        sqlfluff = Path(sys.executable).parent / "sqlfluff"
        if sys.argv[1:2] == ["fix"]:  # `python -m meterline.lint_sql fix PATH...`
            return subprocess.call(
                [str(sqlfluff), "fix", *sys.argv[2:], "--disable-progress-bar", "--processes=2"],
                cwd=root, env=env,
            )
        return subprocess.call(
            [str(sqlfluff), "lint", "dbt_project/models", "dbt_project/tests",
             "--disable-progress-bar", "--nofail" if os.environ.get("METERLINE_SQLFLUFF_NOFAIL") else "--processes=2"],
            cwd=root, env=env,
        )


if __name__ == "__main__":
    sys.exit(main())
