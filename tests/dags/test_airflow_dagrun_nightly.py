"""`airflow dags test meterline_nightly` end to end on DuckDB, on a sample world: the night's
batches and reconciliation are in the warehouse, a second run of the same date leaves every
table identical, and no secret reaches Airflow's logs, XComs or metadata."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from dag_helpers import (
    airflow_env,
    airflow_home,
    dags_test,
    files_containing,
    make_world,
    webhook,
)
from invariants import warehouse_digest


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict]]]:
    with webhook() as h:
        yield h


@pytest.mark.slow
def test_nightly_dag_end_to_end_and_a_rerun_is_identical(tmp_path: Path, hook: tuple[str, list[dict]],
                                                          chromium: str) -> None:
    world = make_world(tmp_path, days=4)  # nights 2026-10-01 .. 2026-10-04
    home = airflow_home(tmp_path)
    hook_secret, stripe_key = secrets.token_hex(12), f"sk_test_{secrets.token_hex(12)}"
    base, received = hook
    env = airflow_env(home, world, METERLINE_STRIPE_API_KEY=stripe_key,
                      METERLINE_ALERTS_SLACK_WEBHOOK_URL=f"{base}/hooks/{hook_secret}",  # a configured channel
                      METERLINE_ALERTS_SMTP_PASSWORD=secrets.token_hex(12))
    warehouse = world / ".meterline" / "warehouse.duckdb"

    # a manual run with logical date 2026-10-02 processes its inferred interval: the night of 10-01
    first = dags_test(env, "meterline_nightly", "2026-10-02", cwd=tmp_path)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        batches = con.execute(
            "SELECT source, interval_start, interval_end, row_count FROM raw.batch_ledger "
            "WHERE status = 'loaded' ORDER BY source").fetchall()
        checks = con.execute(
            "SELECT check_name, outcome FROM ledger.recon_check_results WHERE as_of = ?",
            [dt.datetime(2026, 10, 2)]).fetchall()
    finally:
        con.close()
    night = (dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 2))
    assert [(s, a, b) for s, a, b, _ in batches] == [("billing", *night), ("metering", *night), ("stripe", *night)]
    assert all(n > 0 for s, *_, n in batches if s != "stripe")
    assert len(checks) >= 10 and {o for _, o in checks} <= {"passed", "failed"}  # recorded, none errored
    assert not (world / ".meterline" / "extracts").exists() or not any((world / ".meterline" / "extracts").iterdir())
    # finance's daily flash for the night, from the marts the run just built
    flash = world / "exports" / "reports" / "2026-10-01"
    figures = json.loads((flash / "figures.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in flash.glob("daily-flash-2026-10-01.*")) == [
        "daily-flash-2026-10-01.html", "daily-flash-2026-10-01.pdf"], sorted(p.name for p in flash.iterdir())
    assert figures["key"] == "2026-10-01" and figures["figures"], figures
    before = warehouse_digest(warehouse)

    second = dags_test(env, "meterline_nightly", "2026-10-02", cwd=tmp_path)
    assert second.stdout.count("'action': 'skipped_identical'") + second.stderr.count("'action': 'skipped_identical'") >= 3
    after = warehouse_digest(warehouse)
    changed = sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))
    assert changed == [], f"a rerun of the same date changed {changed}"

    # nothing secret in the task logs (stdout of `dags test`), nor in Airflow's home: its metadata
    # database (XComs, rendered templates, connections) and log files
    for out in (first, second):
        text = out.stdout + out.stderr
        assert stripe_key not in text and hook_secret not in text
    secrets_ = [stripe_key, hook_secret, env["METERLINE_ALERTS_SMTP_PASSWORD"]]
    assert files_containing(home, secrets_) == [] and files_containing(world / "exports", secrets_) == []
    assert all(stripe_key not in str(m["body"]) for m in received)  # alerts sent (if any) carry none
