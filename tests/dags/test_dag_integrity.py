"""Every DAG file imports cleanly (as Airflow's dag-processor imports it: the dags folder is a
bundle on sys.path), with the intended tasks, edges, schedules, retries, pools, timeouts and
failure callbacks, no cycles, and nothing heavy at its top level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dag_helpers import DAGS, airflow_env

# one xdist group with the nightly end-to-end run; the month close run goes beside it. (With
# pytest 9.2 xdist ignores groups, pytest-dev/pytest-xdist#1386: the end-to-end files are
# named to be collected first, so the two long runs start on different workers either way.)
DAG_FILES = sorted(p.name for p in DAGS.glob("meterline_*.py") if p.name != "meterline_airflow.py")
# the stage packages and what they pull in: none may be imported while a DAG file is parsed
HEAVY = ("meterline", "ingest", "reconcile", "exports", "dbt", "great_expectations", "pandas",
         "duckdb", "psycopg", "stripe", "pyarrow")


def run_python(code: str, env: dict[str, str], timeout: int = 300) -> dict:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(next(x for x in res.stdout.splitlines() if x.startswith("RESULT:"))[7:])


def test_dagbag(tmp_path: Path) -> None:
    code = f"""
import json
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(dag_folder={str(DAGS)!r}, bundle_path=Path({str(DAGS)!r}))
out = {{"errors": {{k: str(v)[-500:] for k, v in bag.import_errors.items()}}, "dags": {{}},
        "files": sorted(Path(f).name for f in bag.file_last_changed)}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {{
        "tags": sorted(dag.tags), "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
        "timetable": type(dag.timetable).__name__, "cron": getattr(dag.timetable, "expression", None),
        "start": dag.start_date.isoformat(), "end": dag.end_date and dag.end_date.isoformat(),
        "doc": bool(dag.doc_md),
        "dagrun_timeout": dag.dagrun_timeout and dag.dagrun_timeout.total_seconds(),
        "on_failure": [c.__name__ for c in ([dag.on_failure_callback] if callable(dag.on_failure_callback)
                                            else dag.on_failure_callback or [])],
        "tasks": {{t.task_id: {{
            "upstream": sorted(t.upstream_task_ids), "retries": t.retries,
            "backoff": t.retry_exponential_backoff, "delay": t.retry_delay.total_seconds(),
            "pool": t.pool, "on_failure": [c.__name__ for c in t.on_failure_callback or []],
            "execution_timeout": t.execution_timeout and t.execution_timeout.total_seconds(),
            "multiple_outputs": getattr(t, "multiple_outputs", None),
            "mode": getattr(t, "mode", None), "timeout": getattr(t, "timeout", None),
            "poke_interval": getattr(t, "poke_interval", None),
        }} for t in dag.tasks}},
    }}
print("RESULT:" + json.dumps(out))
"""
    out = run_python(code, airflow_env(tmp_path))
    assert out["errors"] == {}
    assert "meterline_airflow.py" not in out["files"]  # .airflowignore: a helper, not a DAG file
    assert set(out["dags"]) == {"meterline_nightly", "meterline_month_close"}

    for dag in out["dags"].values():
        assert "meterline" in dag["tags"] and dag["doc"]
        assert dag["catchup"] is True and dag["max_active_runs"] == 1
        assert dag["timetable"] == "CronDataIntervalTimetable"  # runs own [start, end) intervals
        assert dag["start"] == "2026-10-01T00:00:00+00:00" and dag["end"] is None  # no METERLINE_*_DATE
        # a run that takes too long fails, and the DAG's callback says so (no task's callback does)
        assert dag["dagrun_timeout"] and dag["on_failure"] == ["alert_run_timeout"]
        for task_id, t in dag["tasks"].items():
            assert t["retries"] >= 1, task_id
            assert t["on_failure"] == ["alert_task_failure"], task_id
            # a hung try fails (then retries, then alerts); shorter than the run's own timeout
            assert t["execution_timeout"] and t["execution_timeout"] < dag["dagrun_timeout"], task_id
            assert t["multiple_outputs"] is False, task_id  # one XCom per task, not one per key
        order = topological(dag["tasks"])  # raises on a cycle
        assert len(order) == len(dag["tasks"])

    nightly = out["dags"]["meterline_nightly"]
    assert nightly["cron"] == "0 0 * * *"
    tasks = nightly["tasks"]
    extracts = ["extract_billing", "extract_metering", "extract_stripe"]
    assert {k: v["upstream"] for k, v in tasks.items()} == {
        **{e: [] for e in extracts},  # in parallel
        "load": extracts, "dbt_build": ["load"], "reconcile": ["dbt_build"], "alert": ["reconcile"],
        "finance_report": ["reconcile"],  # beside alert: a channel down never holds the report back
    }
    for e in extracts:  # extraction: more retries, exponential backoff, no warehouse slot
        assert tasks[e]["retries"] >= 3 and tasks[e]["backoff"] == 2.0 and tasks[e]["pool"] == "default_pool"
    for w in ("load", "dbt_build", "reconcile", "alert", "finance_report"):
        assert tasks[w]["pool"] == "meterline_warehouse", w

    close = out["dags"]["meterline_month_close"]
    assert close["cron"] == "0 0 1 * *"
    assert {k: v["upstream"] for k, v in close["tasks"].items()} == {
        "wait_for_nights": [], "final_nightly": ["wait_for_nights"], "close_period": ["final_nightly"],
        "push_invoices": ["close_period"], "finance_report": ["close_period"]}
    # the wait: a sensor that frees its worker between pokes and takes no warehouse slot
    wait = close["tasks"]["wait_for_nights"]
    assert wait["mode"] == "reschedule" and wait["pool"] == "default_pool"
    assert 60 <= wait["poke_interval"] <= 15 * 60 and 12 * 3600 <= wait["timeout"] <= 36 * 3600
    assert close["dagrun_timeout"] > wait["timeout"] + close["tasks"]["final_nightly"]["execution_timeout"]
    assert all(t["pool"] == "meterline_warehouse" for k, t in close["tasks"].items() if k != "wait_for_nights")
    assert close["tasks"]["push_invoices"]["backoff"] == 2.0


def test_end_date_is_the_last_night_for_both_dags(tmp_path: Path) -> None:
    """METERLINE_END_DATE is the last night: the nightly runs it, the month close schedules only
    months whose every night is on or before it (Airflow schedules a run whose interval starts
    on or before end_date, so the end date itself would schedule a month left unfinished)."""
    code = f"""
import json, sys
sys.path.append({str(DAGS)!r})
import meterline_airflow as m
print("RESULT:" + json.dumps([str(m.END_DATE.date()), m.CLOSE_END_DATE and str(m.CLOSE_END_DATE.date())]))
"""
    for end, close_end in [("2026-11-03", "2026-10-01"), ("2026-10-31", "2026-10-01"),
                           ("2026-10-30", "2026-09-01"), ("2026-12-31", "2026-12-01"),
                           ("2027-02-28", "2027-02-01")]:
        out = run_python(code, airflow_env(tmp_path, METERLINE_END_DATE=end))
        assert out == [end, close_end], end


def topological(tasks: dict[str, dict]) -> list[str]:
    """Kahn's algorithm over the upstream lists; a cycle leaves tasks unordered."""
    pending = {k: set(v["upstream"]) for k, v in tasks.items()}
    order: list[str] = []
    while ready := sorted(k for k, up in pending.items() if not up):
        for k in ready:
            order.append(k)
            del pending[k]
        for up in pending.values():
            up.difference_update(ready)
    assert not pending, f"cycle among {sorted(pending)}"
    return order


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_no_heavy_imports_at_top_level(dag_file: str, tmp_path: Path) -> None:
    """Parse the file as the dag-processor does (dags folder on sys.path) in a fresh interpreter:
    nothing of meterline or the heavy libraries is imported, and the file's own top level is
    under a second. Measured: the file alone, as the dag-processor pays for it on every parse,
    after Airflow's SDK is imported (a cold interpreter's import of Airflow itself, seconds on
    a loaded machine, is the processor's once, not the file's). About 0.05-0.1 s here, on two
    shared cores under load: 1 s catches a DAG file doing real work at parse time."""
    code = f"""
import json, runpy, sys, time
sys.path.append({str(DAGS)!r})
import airflow.sdk
from airflow.sdk import dag, task  # the SDK's lazy names, loaded as any DAG file loads them
t0 = time.perf_counter()
runpy.run_path({str(DAGS / dag_file)!r})
seconds = time.perf_counter() - t0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
print("RESULT:" + json.dumps({{"heavy": heavy, "seconds": seconds}}))
"""
    out = run_python(code, airflow_env(tmp_path))
    assert out["heavy"] == [], f"{dag_file} imports {out['heavy'][:10]} at top level"
    assert out["seconds"] < 1.0, f"{dag_file}: its top level took {out['seconds']:.2f} s"
