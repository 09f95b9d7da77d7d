"""Every DAG file imports cleanly, with tags and retries, and no heavy imports at top level."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "false")
    return tmp_path


def test_dagbag(airflow_home: Path) -> None:
    code = f"""
import json
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder={str(DAGS)!r})
out = {{"errors": {{k: str(v)[:300] for k, v in bag.import_errors.items()}}, "dags": {{}}}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {{
        "tags": sorted(dag.tags),
        "retries": [t.retries for t in dag.tasks],
        "tasks": sorted(t.task_id for t in dag.tasks),
        "catchup": dag.catchup,
    }}
print("RESULT:" + json.dumps(out))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ})
    assert res.returncode == 0, res.stderr[-2000:]
    import json

    out = json.loads(next(x for x in res.stdout.splitlines() if x.startswith("RESULT:"))[7:])
    assert out["errors"] == {}
    assert set(out["dags"]) == {"meterline_nightly", "meterline_month_close"}
    nightly = out["dags"]["meterline_nightly"]
    assert nightly["tasks"] == ["dbt_build", "ingest", "reconcile"]
    assert "meterline" in nightly["tags"] and all(r >= 1 for r in nightly["retries"])
    assert out["dags"]["meterline_month_close"]["tasks"] == ["close_period"]


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_no_heavy_imports_at_top_level(dag_file: str, airflow_home: Path) -> None:
    code = f"""
import sys, runpy
runpy.run_path({str(DAGS / dag_file)!r})
heavy = [m for m in ("dbt", "great_expectations", "pandas", "duckdb", "psycopg", "stripe", "meterline")
         if m in sys.modules]
print("RESULT:" + ",".join(heavy))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    heavy = next(x for x in res.stdout.splitlines() if x.startswith("RESULT:"))[7:]
    assert heavy == "", f"{dag_file} imports {heavy} at top level"
