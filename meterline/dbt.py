"""Running dbt in-process (dbt's programmatic runner) with a profile built from the config.

The profile is generated from the same warehouse target the Python stages use, so both always
point at the same place. Passwords are not written to disk: the profile reads them from an
environment variable set only for the dbt invocation.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meterline.config import Config, WarehouseTarget
from meterline.errors import StageError

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
PASSWORD_ENV = "METERLINE_DBT_PASSWORD"


def profile_yaml(target: WarehouseTarget, threads: int = 2) -> str:
    if target.kind == "duckdb":
        out = {
            "type": "duckdb",
            "path": str(target.path),
            "schema": "main",
            "threads": 1,
        }
    else:
        out = {
            "type": "postgres",
            "host": target.host,
            "port": target.port,
            "user": target.user or os.environ.get("USER", "postgres"),
            "password": "{{ env_var('" + PASSWORD_ENV + "', '') }}",
            "dbname": target.dbname,
            "schema": "public",
            "threads": threads,
        }
    body = "\n".join(f"      {k}: {json.dumps(v)}" for k, v in out.items())
    return f"meterline:\n  target: default\n  outputs:\n    default:\n{body}\n"


@dataclass
class DbtResult:
    command: str
    success: bool
    nodes: int
    failures: list[str]


def dbt_paths(cfg: Config) -> dict[str, Path]:
    base = cfg.state_dir / "dbt"
    return {"profiles": base, "target": base / "target", "logs": base / "logs"}


def run_dbt(cfg: Config, command: str = "build", extra: list[str] | None = None,
            vars_: dict[str, Any] | None = None) -> DbtResult:
    from dbt.cli.main import dbtRunner

    paths = dbt_paths(cfg)
    paths["profiles"].mkdir(parents=True, exist_ok=True)
    target = cfg.warehouse_for("dbt")
    (paths["profiles"] / "profiles.yml").write_text(profile_yaml(target), encoding="utf-8")
    all_vars = {**cfg.dbt_vars(), **(vars_ or {})}
    if target.kind == "duckdb":  # the on-run-start hook limit_file_access() applies them
        all_vars["duckdb_allowed_directories"] = list(target.file_dirs)
        if target.duckdb_settings:  # the hook apply_duckdb_settings() sets them first
            all_vars["duckdb_settings"] = dict(target.duckdb_settings)
    args = [
        command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(paths["profiles"]),
        "--target-path", str(paths["target"]),
        "--log-path", str(paths["logs"]),
        "--vars", json.dumps(all_vars, sort_keys=True),
        "--quiet",
        # no manifest.json / semantic_manifest.json / run_results.json: writing them costs
        # ≈ 2 s a build on 550 nodes; the partial-parse cache is still written, and
        # meterline_run_results.json (below) keeps each node's status and time
        "--no-write-json",
        *(extra or []),
    ]
    old = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = target.password
    try:
        res = dbtRunner().invoke(args)
    finally:
        if old is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = old
    failures: list[str] = []
    nodes = 0
    summary: list[dict[str, Any]] = []
    if res.result is not None and hasattr(res.result, "results"):
        for r in res.result.results:
            nodes += 1
            status = str(getattr(r, "status", "")).lower()
            node = getattr(r, "node", None)
            summary.append({"unique_id": node.unique_id if node is not None else command,
                            "status": status,
                            "execution_time": round(float(getattr(r, "execution_time", 0) or 0), 4)})
            if status in ("error", "fail", "runtimeerror"):
                msg = (getattr(r, "message", "") or "").strip().splitlines()
                node = getattr(r, "node", None)  # a run-operation's result has none
                where = node.unique_id if node is not None else getattr(r, "unique_id", command)
                failures.append(f"{where}: {msg[0] if msg else status}")
    if res.exception is not None:
        failures.append(str(res.exception).strip().splitlines()[0])
    ok = bool(res.success) and not failures
    write_run_summary(paths["target"], command, ok,
                      getattr(res.result, "elapsed_time", None), summary)
    return DbtResult(command=command, success=ok, nodes=nodes, failures=failures)


RUN_SUMMARY = "meterline_run_results.json"


def write_run_summary(target_dir: Path, command: str, success: bool, elapsed: Any,
                      results: list[dict[str, Any]]) -> None:
    """The last invocation's nodes (unique_id, status, execution_time) and elapsed time, in
    `<state_dir>/dbt/target/meterline_run_results.json`: what dbt's run_results.json would
    say about where a build's time went and what failed, without dbt's artifact writes."""
    target_dir.mkdir(parents=True, exist_ok=True)
    body = {"command": command, "success": success,
            "elapsed_time": round(float(elapsed or 0), 3), "results": results}
    tmp = target_dir / (RUN_SUMMARY + ".tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    tmp.replace(target_dir / RUN_SUMMARY)


def build(cfg: Config, extra: list[str] | None = None, unit_tests: bool = False) -> DbtResult:
    """`dbt build`: every model, seed and data test. dbt's unit tests test the SQL, not the
    night's data, so the pipeline leaves them out (a third of a small build's time); they run
    in CI (tests/dbt/test_dbt_build.py) and with `unit_tests=True`."""
    if not unit_tests:
        extra = ["--exclude-resource-type", "unit_test", *(extra or [])]
    res = run_dbt(cfg, "build", extra=extra)
    if not res.success:
        shown = "; ".join(res.failures[:5]) or "see .meterline/dbt/logs/dbt.log"
        raise StageError(f"dbt build failed: {shown}")
    return res
