"""The Stripe subscription, dispute, credit note and event staging models on the sample world.

No full demo: the sample world's Stripe API (the fixture server) is pulled for its last three
nights, loaded as `stripe` batches into a DuckDB warehouse, and only these staging models (and
the `*_latest` views over them) are built, with their data tests.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.load import ensure_raw, load_batch
from ingest.stripe import StripeReader, extract_stripe_interval, make_client
from meterline.config import parse_db_url
from meterline.sample import generate, serve_stripe_fixture
from meterline.warehouse import connect

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = ROOT / "dbt_project"
KEY = "sk_test_stripe_staging_sample"
NIGHTS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
MODELS = [
    "stg_stripe__subscriptions",
    "stg_stripe__disputes",
    "stg_stripe__credit_notes",
    "stg_stripe__events",
    "stg_ledger__batches",
    "int_stripe_disputes_latest",
    "int_stripe_credit_notes_latest",
]
# column -> DuckDB type: money is BIGINT minor units, times are TIMESTAMP (naive UTC)
TYPED = {
    "stg_stripe__subscriptions": {
        "current_period_start_at": "TIMESTAMP",
        "current_period_end_at": "TIMESTAMP",
        "canceled_at": "TIMESTAMP",
        "created_at": "TIMESTAMP",
    },
    "stg_stripe__disputes": {"amount_minor": "BIGINT", "created_at": "TIMESTAMP"},
    "stg_stripe__credit_notes": {"amount_minor": "BIGINT", "created_at": "TIMESTAMP"},
    "stg_stripe__events": {"created_at": "TIMESTAMP"},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(warehouse file, the world's Stripe fixture folder) after the selective dbt build."""
    from dbt.cli.main import dbtRunner

    out = tmp_path_factory.mktemp("stripe_staging_sample")
    world = out / "world"
    generate(world, seed=7, accounts=12, days=34)
    stripe_dir = world / "sources" / "stripe"
    target = parse_db_url(f"duckdb:///{out / 'wh.duckdb'}", out, "test")
    with serve_stripe_fixture(stripe_dir) as base, connect(target) as conn:
        ensure_raw(conn)
        reader = StripeReader(make_client(KEY, base), KEY, shards=1)
        for day in NIGHTS:
            start = dt.datetime.combine(day, dt.time())
            end = start + dt.timedelta(days=1)
            tables = extract_stripe_interval(reader, start, end)
            load_batch(conn, "stripe", start, end, tables, end + dt.timedelta(minutes=50))

    profiles = out / "profiles"
    profiles.mkdir()
    output = {"type": "duckdb", "path": str(target.path), "schema": "main", "threads": 1}
    profile = {"meterline": {"target": "test", "outputs": {"test": output}}}
    (profiles / "profiles.yml").write_text(yaml.safe_dump(profile))
    args = [
        "build",
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(profiles),
        "--target-path", str(out / "target"),
        "--log-path", str(out / "logs"),
        "--no-use-colors",
        "--select", *MODELS,
    ]  # fmt: skip
    result = dbtRunner().invoke(args)
    failures = []
    if result.result is not None and hasattr(result.result, "results"):
        failures = [
            f"{r.node.unique_id}: {r.status} {r.message}"
            for r in result.result.results
            if str(r.status) not in ("success", "pass", "skipped")
        ]
    assert result.success, f"dbt build failed: {result.exception} {failures}"
    return target.path, stripe_dir


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(path)) as con:
        return con.execute(sql).fetchall()


def test_staging_columns_are_typed(built: tuple[Path, Path]) -> None:
    path, _ = built
    for model, columns in TYPED.items():
        types = dict(
            _query(
                path,
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = 'staging' and table_name = '{model}'",
            )
        )
        for column, sql_type in columns.items():
            assert types.get(column) == sql_type, (model, column, types)


def test_staging_models_have_the_sample_rows(built: tuple[Path, Path]) -> None:
    path, stripe_dir = built
    fixture = {
        name: json.loads((stripe_dir / f"{name}.json").read_text())
        for name in ("subscriptions", "disputes", "credit_notes")
    }

    # every subscription renewed on 2026-11-01 comes in with its event's version
    subs = _query(
        path,
        "select subscription_id, currency, current_period_start_at "
        "from staging.stg_stripe__subscriptions",
    )
    assert subs and {r[0] for r in subs} <= {s["id"] for s in fixture["subscriptions"]}
    assert all(r[1] == r[1].upper() and isinstance(r[2], dt.datetime) for r in subs)

    # the sample's one dispute: opened on 2026-11-01, closed the next night by an event
    assert fixture["disputes"], "the sample world plants one dispute"
    disputes = _query(
        path,
        "select dispute_id, charge_id, amount_minor, currency, _batch_id "
        "from staging.stg_stripe__disputes",
    )
    want = {(d["id"], d["charge"], d["amount"], d["currency"].upper()) for d in fixture["disputes"]}
    assert {r[:4] for r in disputes} == want
    assert all(type(r[2]) is int for r in disputes)
    latest = _query(
        path, "select dispute_id, dispute_status from intermediate.int_stripe_disputes_latest"
    )
    assert sorted(latest) == sorted((d["id"], d["status"]) for d in fixture["disputes"])

    # the sample billing system issues no credit notes: the model builds, empty
    notes = _query(path, "select count(*) from staging.stg_stripe__credit_notes")
    assert notes == [(len(fixture["credit_notes"]),)]

    # events of all three nights, one row per event id
    events = _query(
        path,
        "select event_type, object_type, count(*), count(distinct event_id) "
        "from staging.stg_stripe__events group by 1, 2",
    )
    kinds = {(r[0], r[1]) for r in events}
    assert {
        ("invoice.paid", "invoice"),
        ("charge.dispute.closed", "dispute"),
        ("customer.subscription.updated", "subscription"),
    } <= kinds
    assert all(r[2] == r[3] for r in events)
    batches = _query(path, "select count(distinct _batch_id) from staging.stg_stripe__events")
    assert batches == [(len(NIGHTS),)]
