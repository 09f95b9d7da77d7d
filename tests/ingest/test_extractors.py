"""Extractors against the sample world: the window rules of docs/sources.md, exactly."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ingest.sql_sources import extract_billing, extract_metering, metering_coverage
from ingest.stripe import extract_stripe, make_client
from meterline.config import load_config
from meterline.sample import generate, serve_stripe_fixture


def read_all(chunks: object) -> pa.Table:
    batches = list(chunks)  # type: ignore[call-overload]
    return pa.Table.from_batches(batches) if batches else pa.table({})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate(out, seed=3, accounts=6, days=34)
    (out / "meterline.toml").write_text('[sources]\nstripe_fixture = "sources/stripe"\n')
    return out


def test_metering_window(world: Path) -> None:
    cfg = load_config(world / "meterline.toml", env={})
    assert metering_coverage(cfg) == (dt.date(2026, 10, 1), dt.date(2026, 11, 3))
    day = dt.date(2026, 10, 20)
    got = read_all(extract_metering(cfg, day)["metering_usage_hourly"])
    start = dt.datetime(2026, 10, 20)
    src = duckdb.connect(str(world / "sources" / "metering.duckdb"), read_only=True)
    expected = src.execute(
        "SELECT count(*), sum(quantity) FROM usage_hourly WHERE hour_start >= ? AND hour_start < ? "
        "AND updated_at >= ? AND updated_at < ?",
        [start - dt.timedelta(days=3), start + dt.timedelta(days=1), start, start + dt.timedelta(days=1)],
    ).fetchone()
    assert (got.num_rows, sum(got.column("quantity").to_pylist())) == expected
    assert got.num_rows > 0
    # every version is read by exactly one night: the union over all nights is the whole store
    total = sum(
        read_all(extract_metering(cfg, dt.date(2026, 10, 1) + dt.timedelta(days=i))["metering_usage_hourly"]).num_rows
        for i in range(34))
    in_world = src.execute(
        "SELECT count(*) FROM usage_hourly WHERE updated_at < TIMESTAMP '2026-11-04'").fetchone()[0]
    assert total == in_world


def test_billing_snapshot_and_counters(world: Path) -> None:
    cfg = load_config(world / "meterline.toml", env={})
    got = {k: read_all(v) for k, v in extract_billing(cfg, dt.date(2026, 10, 20)).items()}
    src = duckdb.connect(str(world / "sources" / "billing.duckdb"), read_only=True)
    for raw, table in [("billing_accounts", "accounts"), ("billing_plans", "plans"),
                       ("billing_subscriptions", "subscriptions"), ("billing_price_books", "price_books"),
                       ("billing_credits", "credits"), ("billing_commitments", "commitments")]:
        n = src.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert n > 0 and got[raw].num_rows == n
    counters = got["billing_usage_counters"].to_pylist()
    assert counters and all(dt.datetime(2026, 10, 20) <= c["updated_at"] < dt.datetime(2026, 10, 21)
                            for c in counters)


def test_stripe_from_the_sample_api(world: Path) -> None:
    stripe_dir = world / "sources" / "stripe"
    objects = {r: json.loads((stripe_dir / f"{r}.json").read_text())
               for r in ("invoices", "charges", "refunds", "balance_transactions", "payouts", "customers")}
    day = dt.date(2026, 11, 1)
    lo = int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp())
    hi = lo + 86400
    with serve_stripe_fixture(stripe_dir) as base:
        client = make_client("sk_test_x", base)
        got = extract_stripe(client, day, api_key="sk_test_x")
    for res, table in [("invoices", "stripe_invoices"), ("charges", "stripe_charges"),
                       ("refunds", "stripe_refunds"), ("balance_transactions", "stripe_balance_transactions"),
                       ("payouts", "stripe_payouts")]:
        want = sorted(o["id"] for o in objects[res] if lo <= o["created"] < hi)
        assert sorted(got[table].column("id").to_pylist()) == want, res
    assert len(got["stripe_invoices"]) > 0
    lines = [li["id"] for o in objects["invoices"] if lo <= o["created"] < hi for li in o["lines"]["data"]]
    assert sorted(got["stripe_invoice_lines"].column("id").to_pylist()) == sorted(lines)
    # customers are pulled by created like everything else (older ones: events or a resync)
    assert got["stripe_customers"].num_rows == sum(lo <= c["created"] < hi for c in objects["customers"])


def test_bad_key_is_a_clear_error_without_the_key(world: Path) -> None:
    from meterline.errors import SourceError

    with serve_stripe_fixture(world / "sources" / "stripe") as base:
        client = make_client("not_a_key_canary", base, max_network_retries=0)
        with pytest.raises(SourceError) as err:
            extract_stripe(client, dt.date(2026, 11, 1), api_key="not_a_key_canary")
    assert "stripe source" in str(err.value)
    assert "not_a_key_canary" not in str(err.value)
