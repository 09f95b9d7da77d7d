"""`airflow dags test meterline_month_close` end to end against localstripe: the wait for the
month's nights passes at once (every night but the last is loaded), the month's last night runs,
the period is closed, exported and locked, and its issued invoices are in Stripe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dag_helpers import airflow_env, airflow_home, clean_env, dags_test, make_world

KEY = "sk_test_meterline_dag"


@pytest.mark.slow
@pytest.mark.stripe_peer
def test_month_close_dag_against_localstripe(tmp_path: Path, localstripe_url: str, chromium: str) -> None:
    world = make_world(tmp_path, days=28, start="2027-02-01")  # February 2027: 28 nights
    # every night but the last loaded (ingest only: the DAG's final nightly and the close build)
    prep = subprocess.run([sys.executable, "-c", (
        "import datetime as dt; from meterline.config import load_config; "
        "from meterline.runner import days_between, ingest_days; "
        "ingest_days(load_config(), days_between(dt.date(2027, 2, 1), dt.date(2027, 2, 27)), lambda m: None)")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**clean_env(), "METERLINE_CONFIG": str(world / "meterline.toml")})
    assert prep.returncode == 0, prep.stderr[-2000:]
    home = airflow_home(tmp_path)
    env = airflow_env(home, world, METERLINE_STRIPE_API_KEY=KEY,
                      METERLINE_SOURCES_STRIPE_API_BASE=localstripe_url,  # the push's Stripe
                      AIRFLOW_VAR_METERLINE_LOCALSTRIPE="true")

    run = dags_test(env, "meterline_month_close", "2027-03-01", cwd=tmp_path)  # interval: February
    out = run.stdout + run.stderr
    # the wait found nights 1..27 loaded and passed at its first poke
    assert "2027-02: every night but the last is loaded" in out and "waiting for" not in out
    assert "'day': '2027-02-28'" in out  # the final nightly ran the last night

    con = duckdb.connect(str(world / ".meterline" / "warehouse.duckdb"), read_only=True)
    try:
        nights = con.execute(
            "SELECT count(DISTINCT interval_start) FROM raw.batch_ledger WHERE source = 'metering' "
            "AND status = 'loaded' AND interval_start >= '2027-02-01' AND interval_start < '2027-03-01'").fetchone()[0]
        locked = con.execute("SELECT period FROM ledger.period_locks").fetchall()
        issued = sorted(con.execute(
            "SELECT upper(currency), total_minor FROM ledger.issued_invoices "
            "WHERE period = '2027-02' AND voided_at IS NULL AND total_minor <> 0").fetchall())
        outbox = dict(con.execute("SELECT state, count(*) FROM ledger.stripe_outbox GROUP BY state").fetchall())
    finally:
        con.close()
    assert nights == 28 and locked == [("2027-02",)]
    assert (world / "exports" / "2027-02" / "manifest.json").is_file()
    assert issued and set(outbox) == {"confirmed"}
    # finance's month-end pack for February, beside the push
    pack = world / "exports" / "reports" / "2027-02"
    assert sorted(p.name for p in pack.glob("month-end-pack-2027-02.*")) == [
        "month-end-pack-2027-02.html", "month-end-pack-2027-02.pdf"], sorted(p.name for p in pack.iterdir())
    assert json.loads((pack / "figures.json").read_text(encoding="utf-8"))["key"] == "2027-02"

    from ingest.stripe import make_client

    stripe = make_client(KEY, localstripe_url)
    invoices = [i.to_dict() for i in stripe.v1.invoices.list(params={"limit": 100}).data]
    assert sorted((i["currency"].upper(), i["total"]) for i in invoices) == issued
