"""DESIGN.md's layering table, enforced: each stage package imports only `meterline` (never
another stage), and `meterline` imports stage packages only in its runner and CLI. Imports inside
functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "reconcile", "exports")
ALLOWED_IN_METERLINE = {"meterline/runner.py", "meterline/cli.py"}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every absolute import in `path`."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def violations(package: str, forbidden: set[str], allowed_files: set[str] = frozenset()) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in allowed_files:
            continue
        found += [f"{rel} imports {p}" for p in sorted(imported_packages(path) & forbidden)]
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_no_other_stage(stage: str) -> None:
    assert violations(stage, set(STAGES + ("dags", "bench")) - {stage}) == []


def test_meterline_imports_stages_only_in_runner_and_cli() -> None:
    assert violations("meterline", set(STAGES + ("dags", "bench")), ALLOWED_IN_METERLINE) == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from ingest.stripe import make_client\n    import exports.close\n")
    assert imported_packages(f) >= {"ingest", "exports"}
