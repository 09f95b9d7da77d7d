"""Row-level contract violations go to raw.quarantine with a reason; past the share, nothing loads."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.load import QuarantineLimitError, ensure_raw, load_batch
from meterline.config import parse_db_url
from meterline.warehouse import Connection, connect

DAY = dt.datetime(2026, 10, 5)
NEXT = DAY + dt.timedelta(days=1)
T0 = dt.datetime(2026, 11, 21, 3, 0)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def conn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connection]:
    url = "duckdb:///wh.duckdb" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    with connect(parse_db_url(url, tmp_path, "test")) as c:
        ensure_raw(c)
        yield c


def usage_text(rows: list[tuple]) -> pa.Table:
    """Metering rows as a CSV source gives them: every column text."""
    names = ["hour_start", "account_id", "project_id", "category", "outcome", "quantity", "updated_at"]
    return pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})


GOOD = ("2026-10-05 03:00:00", "a1", "p1", "error", "accepted", "5", "2026-10-05 03:10:00")


def quarantined(conn: Connection) -> list[tuple]:
    return conn.fetchall("SELECT raw_table, reason, account_id, category, day, row_json, _source "
                         "FROM raw.quarantine ORDER BY reason")


def test_each_metering_reason(conn: Connection) -> None:
    rows = [
        GOOD,
        ("2026-10-05 04:00:00", "a1", "p1", "error", "accepted", "5", "2026-10-05 04:10:00"),
        ("not a time", "a1", "p1", "error", "accepted", "5", "2026-10-05 03:10:00"),
        ("2026-10-05 03:00:00", None, "p1", "error", "accepted", "5", "2026-10-05 03:10:00"),
        ("2026-10-05 03:00:00", "", "p2", "error", "accepted", "5", "2026-10-05 03:10:00"),
        ("2026-10-05 03:00:00", "a1", "p3", "error", "accepted", "-1", "2026-10-05 03:10:00"),
        ("2026-10-05 03:00:00", "a1", "p4", "bogus", "accepted", "5", "2026-10-05 03:10:00"),
        GOOD,  # a second copy of the natural key in the batch
    ]
    r = load_batch(conn, "metering", DAY, NEXT, {"metering_usage_hourly": usage_text(rows)}, T0)
    assert r.quarantined == {"duplicate_key": 1, "missing_account": 2, "negative_quantity": 1,
                             "unknown_category": 1, "unparsable_timestamp": 1}
    assert r.row_counts == {"metering_usage_hourly": 2}
    assert conn.fetchall("SELECT hour_start, quantity FROM raw.metering_usage_hourly ORDER BY 1") == [
        (dt.datetime(2026, 10, 5, 3), 5), (dt.datetime(2026, 10, 5, 4), 5)]
    q = quarantined(conn)
    assert sorted(((x[1], x[2], x[3], x[4]) for x in q), key=repr) == sorted([
        ("duplicate_key", "a1", "error", DAY.date()),
        ("missing_account", None, "error", DAY.date()),
        ("missing_account", "", "error", DAY.date()),
        ("negative_quantity", "a1", "error", DAY.date()),
        ("unknown_category", "a1", "bogus", DAY.date()),
        ("unparsable_timestamp", "a1", "error", None),
    ], key=repr)
    by_reason = {x[1]: json.loads(x[5]) for x in q}
    assert by_reason["unparsable_timestamp"]["hour_start"] == "not a time"
    assert by_reason["negative_quantity"]["quantity"] == -1
    assert by_reason["duplicate_key"]["hour_start"] == "2026-10-05 03:00:00"
    assert {x[0] for x in q} == {"metering_usage_hourly"} and {x[6] for x in q} == {"metering"}
    ledger = conn.fetchall("SELECT row_count FROM raw.batch_ledger")
    assert ledger == [(2,)]


def test_billing_currency_and_keys(conn: Connection) -> None:
    accounts = pa.table({
        "account_id": ["acc_a", "acc_b", "acc_c", "acc_a"],
        "name": ["A", "B", "C", "A again"],
        "currency": ["USD", "XXY", None, "USD"],
        "billing_anchor_day": pa.array([1, 1, 1, 1], pa.int32()),
        "stripe_customer_id": ["cus_a", "cus_b", "cus_c", "cus_a"],
        "created_at": pa.array([DAY] * 4, pa.timestamp("us")),
    })
    plans = pa.table({"plan_id": ["p1", "p2"], "name": ["x", "y"], "currency": ["JPY", "usd"],
                      "base_fee_minor": [100, 200]})
    prices = pa.table({
        "price_id": ["pr1"], "plan_id": ["p1"], "category": ["error"],
        "effective_from": pa.array([DAY.date()], pa.date32()), "effective_to": pa.array([None], pa.date32()),
        "pricing_model": ["graduated"], "reserved_quantity": pa.array([None], pa.int64()),
        "reserved_unit_price_decimal": pa.array([None], pa.decimal128(38, 12)),
        "spend_cap_minor": pa.array([None], pa.int64()), "package_size": pa.array([None], pa.int64()),
        "spike_multiplier": pa.array([None], pa.decimal128(38, 12)),
        "included_quantity": [0], "tier_start": [0], "tier_end": pa.array([None], pa.int64()),
        "unit_price_decimal": pa.array([Decimal("0.000000000251")], pa.decimal128(38, 12)),
    })
    r = load_batch(conn, "billing", DAY, NEXT,
                   {"billing_accounts": accounts, "billing_plans": plans, "billing_price_books": prices},
                   T0)
    assert r.quarantined == {"duplicate_key": 1, "invalid_currency": 3}
    assert r.row_counts == {"billing_accounts": 1, "billing_plans": 1, "billing_price_books": 1}
    assert conn.fetchone("SELECT unit_price_decimal FROM raw.billing_price_books")[0] == Decimal("0.000000000251")
    reasons = sorted((x[0], x[1], x[2]) for x in quarantined(conn))
    assert reasons == [("billing_accounts", "duplicate_key", "acc_a"),
                       ("billing_accounts", "invalid_currency", "acc_b"),
                       ("billing_accounts", "invalid_currency", "acc_c"),
                       ("billing_plans", "invalid_currency", None)]
    kept = conn.fetchall("SELECT account_id, name FROM raw.billing_accounts")
    assert kept == [("acc_a", "A")]  # the first copy by content order stays


def test_billing_counter_repeats_are_not_quarantined(conn: Connection) -> None:
    """A counter row twice in a batch is billing double-counting: reconciliation reports it."""
    row = {"day": DAY.date(), "account_id": "a1", "category": "error", "quantity": 3, "updated_at": DAY}
    counters = pa.Table.from_pylist([row, row])
    r = load_batch(conn, "billing", DAY, NEXT, {"billing_usage_counters": counters}, T0)
    assert r.quarantined == {} and r.rows == 2


def test_share_limit_fails_naming_source_and_reason(conn: Connection) -> None:
    rows = [GOOD] + [("2026-10-05 03:00:00", "a1", f"p{i}", "error", "accepted", "-5",
                      "2026-10-05 03:10:00") for i in range(3)]
    with pytest.raises(QuarantineLimitError) as err:
        load_batch(conn, "metering", DAY, NEXT, {"metering_usage_hourly": usage_text(rows)}, T0,
                   max_quarantine_share=Decimal("0.5"))
    msg = str(err.value)
    assert msg.startswith("metering source: 3 of 4 rows") and "'negative_quantity'" in msg
    assert "nothing of this batch was loaded" in msg
    for table in ("metering_usage_hourly", "quarantine", "batch_ledger"):
        assert conn.fetchone(f"SELECT count(*) FROM raw.{table}")[0] == 0
    # at the limit it loads
    r = load_batch(conn, "metering", DAY, NEXT, {"metering_usage_hourly": usage_text(rows[:3])}, T0,
                   max_quarantine_share=Decimal("0.67"))
    assert r.action == "loaded" and r.quarantined == {"negative_quantity": 2}


def test_duplicate_share_limit(conn: Connection) -> None:
    with pytest.raises(QuarantineLimitError, match="mostly 'duplicate_key'"):
        load_batch(conn, "metering", DAY, NEXT, {"metering_usage_hourly": usage_text([GOOD] * 3)}, T0,
                   max_quarantine_share=Decimal("0.1"))
    assert conn.fetchone("SELECT count(*) FROM raw.batch_ledger")[0] == 0


def test_float_money_is_refused(conn: Connection) -> None:
    from meterline.errors import SourceError

    prices = pa.table({
        "price_id": ["pr1"], "plan_id": ["p1"], "category": ["error"],
        "effective_from": pa.array([DAY.date()], pa.date32()), "effective_to": pa.array([None], pa.date32()),
        "pricing_model": ["graduated"], "reserved_quantity": pa.array([None], pa.int64()),
        "reserved_unit_price_decimal": pa.array([None], pa.decimal128(38, 12)),
        "spend_cap_minor": pa.array([None], pa.int64()), "package_size": pa.array([None], pa.int64()),
        "spike_multiplier": pa.array([None], pa.decimal128(38, 12)),
        "included_quantity": [0], "tier_start": [0], "tier_end": pa.array([None], pa.int64()),
        "unit_price_decimal": [0.1],
    })
    with pytest.raises(SourceError, match="money"):
        load_batch(conn, "billing", DAY, NEXT, {"billing_price_books": prices}, T0)


def credits(rows: list[tuple]) -> pa.Table:
    names = ["credit_id", "account_id", "currency", "amount_minor", "granted_at", "expires_at", "reason"]
    types = [pa.string(), pa.string(), pa.string(), pa.int64(), pa.timestamp("us"),
             pa.timestamp("us"), pa.string()]
    return pa.table({n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))})


def commitments(rows: list[tuple]) -> pa.Table:
    names = ["commitment_id", "account_id", "currency", "minimum_minor", "starts_on", "ends_on"]
    types = [pa.string(), pa.string(), pa.string(), pa.int64(), pa.date32(), pa.date32()]
    return pa.table({n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))})


GRANTED, EXPIRES = DAY - dt.timedelta(days=30), DAY + dt.timedelta(days=335)
STARTS, ENDS = dt.date(2026, 9, 1), dt.date(2027, 9, 1)


def test_billing_credits_and_commitments(conn: Connection) -> None:
    credit_rows = credits([
        ("cr1", "acc_a", "USD", 25000, GRANTED, EXPIRES, "prepaid"),
        ("cr2", "acc_b", "XXY", 100, GRANTED, None, "goodwill"),       # invalid_currency
        ("cr3", None, "USD", 100, GRANTED, None, "goodwill"),           # missing_account
        ("cr4", "", "EUR", 100, GRANTED, None, "goodwill"),             # missing_account
        ("cr5", "acc_a", "USD", 100, None, None, "promotional"),        # unparsable_timestamp
        ("cr1", "acc_a", "USD", 99, GRANTED, None, "prepaid"),          # duplicate_key
    ])
    commitment_rows = commitments([
        ("cm1", "acc_a", "JPY", 75000, STARTS, ENDS),
        ("cm2", "acc_b", "usd", 50000, STARTS, None),                   # invalid_currency
        ("cm3", None, "USD", 50000, STARTS, None),                      # missing_account
        ("cm1", "acc_a", "JPY", 75000, STARTS, ENDS),                   # duplicate_key
    ])
    r = load_batch(conn, "billing", DAY, NEXT,
                   {"billing_credits": credit_rows, "billing_commitments": commitment_rows}, T0)
    assert r.quarantined == {"invalid_currency": 2, "missing_account": 3,
                             "unparsable_timestamp": 1, "duplicate_key": 2}
    assert r.row_counts == {"billing_credits": 1, "billing_commitments": 1}
    assert conn.fetchall("SELECT credit_id, amount_minor, expires_at FROM raw.billing_credits") == [
        ("cr1", 25000, EXPIRES)]  # the first copy by content order stays
    assert conn.fetchall("SELECT commitment_id, minimum_minor, ends_on FROM raw.billing_commitments"
                         ) == [("cm1", 75000, ENDS)]
    q = sorted(((x[0], x[1], x[2], x[4]) for x in quarantined(conn)), key=repr)
    assert q == sorted([
        ("billing_credits", "invalid_currency", "acc_b", GRANTED.date()),
        ("billing_credits", "missing_account", None, GRANTED.date()),
        ("billing_credits", "missing_account", "", GRANTED.date()),
        ("billing_credits", "unparsable_timestamp", "acc_a", None),
        ("billing_credits", "duplicate_key", "acc_a", GRANTED.date()),
        ("billing_commitments", "invalid_currency", "acc_b", STARTS),
        ("billing_commitments", "missing_account", None, STARTS),
        ("billing_commitments", "duplicate_key", "acc_a", STARTS),
    ], key=repr)


def test_negative_money_is_quarantined(conn: Connection) -> None:
    credit_rows = credits([
        ("cr1", "acc_a", "USD", 25000, GRANTED, EXPIRES, "prepaid"),
        ("cr2", "acc_a", "USD", -100, GRANTED, None, "goodwill"),
    ])
    commitment_rows = commitments([
        ("cm1", "acc_a", "USD", 0, STARTS, ENDS),  # zero is a valid (empty) commitment
        ("cm2", "acc_b", "USD", -1, STARTS, None),
    ])
    r = load_batch(conn, "billing", DAY, NEXT,
                   {"billing_credits": credit_rows, "billing_commitments": commitment_rows}, T0)
    assert r.quarantined == {"negative_amount": 2}
    assert r.row_counts == {"billing_credits": 1, "billing_commitments": 1}
    q = sorted((x[0], x[1], x[2], json.loads(x[5])) for x in quarantined(conn))
    assert [(x[0], x[1], x[2]) for x in q] == [("billing_commitments", "negative_amount", "acc_b"),
                                                ("billing_credits", "negative_amount", "acc_a")]
    assert q[0][3]["minimum_minor"] == -1 and q[1][3]["amount_minor"] == -100


def test_float_minor_units_are_refused(conn: Connection) -> None:
    from meterline.errors import SourceError

    plans = pa.table({"plan_id": ["p1"], "name": ["Team"], "currency": ["USD"],
                      "base_fee_minor": [2900.0]})
    with pytest.raises(SourceError, match="billing_plans.base_fee_minor is money"):
        load_batch(conn, "billing", DAY, NEXT, {"billing_plans": plans}, T0)
    assert conn.fetchone("SELECT count(*) FROM raw.billing_plans")[0] == 0
