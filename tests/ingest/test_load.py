"""The raw contract: batch-stamped appends, skip-if-identical, replace-in-one-transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.arrow_types import to_raw_table
from ingest.load import ensure_raw, load_batch
from meterline.config import parse_db_url
from meterline.warehouse import Connection, connect

DAY = dt.datetime(2026, 10, 5)
NEXT = DAY + dt.timedelta(days=1)
T0 = dt.datetime(2026, 11, 21, 3, 0)


def usage(rows: list[tuple]) -> pa.Table:
    return to_raw_table("metering_usage_hourly", [
        {"hour_start": h, "account_id": a, "project_id": "p1", "category": "error",
         "outcome": "accepted", "quantity": q, "updated_at": h + dt.timedelta(minutes=10)}
        for h, a, q in rows
    ])


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def conn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connection]:
    if request.param == "duckdb":
        target = parse_db_url("duckdb:///wh.duckdb", tmp_path, "test")
    else:
        target = parse_db_url(request.getfixturevalue("pg_url"), tmp_path, "test")
    with connect(target) as c:
        ensure_raw(c)
        yield c


def raw_rows(conn: Connection) -> list[tuple]:
    return conn.fetchall(
        'SELECT account_id, quantity, _batch_id, _source FROM raw.metering_usage_hourly ORDER BY 1, 2')


def ledger(conn: Connection) -> list[tuple]:
    return conn.fetchall("SELECT batch_id, source, row_count, status FROM raw.batch_ledger ORDER BY 1")


def test_load_skip_replace(conn: Connection) -> None:
    first = usage([(DAY, "a1", 5), (DAY + dt.timedelta(hours=1), "a2", 7)])
    r1 = load_batch(conn, "metering", DAY, NEXT, {"metering_usage_hourly": first}, T0)
    assert r1.action == "loaded" and r1.rows == 2
    assert raw_rows(conn) == [("a1", 5, r1.batch_id, "metering"), ("a2", 7, r1.batch_id, "metering")]

    # same rows in another order: recognised as identical, nothing written
    again = usage([(DAY + dt.timedelta(hours=1), "a2", 7), (DAY, "a1", 5)])
    r2 = load_batch(conn, "metering", DAY, NEXT, {"metering_usage_hourly": again}, T0 + dt.timedelta(hours=1))
    assert r2.action == "skipped_identical" and r2.batch_id == r1.batch_id
    assert len(raw_rows(conn)) == 2
    assert ledger(conn) == [(r1.batch_id, "metering", 2, "loaded")]

    # the source changed: the interval's batch is replaced, never appended twice
    changed = usage([(DAY, "a1", 6)])
    r3 = load_batch(conn, "metering", DAY, NEXT, {"metering_usage_hourly": changed}, T0)
    assert r3.action == "replaced" and r3.batch_id != r1.batch_id
    assert raw_rows(conn) == [("a1", 6, r3.batch_id, "metering")]
    assert ledger(conn) == [(r3.batch_id, "metering", 1, "loaded")]


def test_crash_mid_load_leaves_nothing(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    good = usage([(DAY, "a1", 5)])
    r1 = load_batch(conn, "metering", DAY, NEXT, {"metering_usage_hourly": good}, T0)
    before = (raw_rows(conn), ledger(conn))

    calls = {"n": 0}
    original = Connection.insert_arrow

    def dying(self: Connection, schema: str, table: str, data: pa.Table, chunk_rows: int = 200_000) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed between tables")
        return original(self, schema, table, data, chunk_rows)

    monkeypatch.setattr(Connection, "insert_arrow", dying)
    counters = to_raw_table("billing_usage_counters", [
        {"day": DAY.date(), "account_id": "a1", "category": "error", "quantity": 1, "updated_at": DAY}])
    with pytest.raises(RuntimeError, match="killed"):
        load_batch(conn, "metering", DAY, NEXT,
                   {"metering_usage_hourly": usage([(DAY, "a1", 9)]), "billing_usage_counters": counters}, T0)
    assert (raw_rows(conn), ledger(conn)) == before
    assert conn.fetchone("SELECT count(*) FROM raw.billing_usage_counters")[0] == 0
    assert r1.action == "loaded"


def test_decimal_prices_stay_exact(conn: Connection) -> None:
    from decimal import Decimal

    prices = to_raw_table("billing_price_books", [{
        "price_id": "p", "plan_id": "team_usd", "category": "attachment",
        "effective_from": dt.date(2026, 1, 1), "effective_to": None, "included_quantity": 0,
        "tier_start": 0, "tier_end": None, "unit_price_decimal": Decimal("0.000000000251"),
    }])
    load_batch(conn, "billing", DAY, NEXT, {"billing_price_books": prices}, T0)
    value = conn.fetchone("SELECT unit_price_decimal FROM raw.billing_price_books")[0]
    assert value == Decimal("0.000000000251")
    assert isinstance(value, Decimal)
