"""Row-level contract violations go to raw.quarantine with a reason; past the share, nothing loads."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from invariants import check_all, usage_conservation

from ingest.load import QuarantineLimitError, ensure_raw, load_batch
from meterline.config import Config, load_config, parse_db_url
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


# ---------------------------------------------------------------------------------------------
# Through the build (issue 10 case 8): malformed rows of the metering and billing sources go
# through the nightly ingest and the dbt build, and the shared invariants hold on the warehouse
# (tests/invariants.py). The sources are typed DuckDB files, as the demo's: a text timestamp that
# does not parse cannot be written to them (it is covered row by row above).

WORLD_NIGHTS = [dt.date(2026, 10, 1), dt.date(2026, 10, 2)]
HOUR = dt.datetime(2026, 10, 1, 5)  # every planted usage row's hour ...
WRITTEN = dt.datetime(2026, 10, 1, 6)  # ... written during the night of 2026-10-01
PLANTED_PERIOD = "2026-10"


def _built_world(tmp: Path, usage: list[tuple], metering_sql: list[str], billing_sql: list[str],
                 select: list[str] | None = None) -> tuple[Config, Path]:
    """A generated world (3 accounts, 2 days, nothing planted) with the `usage` rows
    (hour_start, account_id, project_id, category, outcome, quantity, updated_at) and
    `metering_sql` added to its metering source and `billing_sql` run on its billing source; its
    two nights ingested as `meterline run` does, then the dbt build (of `select` and what it
    needs, when given). Returns the config and the metering source file."""
    import duckdb

    from meterline import dbt
    from meterline.runner import ingest_days
    from meterline.sample.generate import generate

    generate(tmp, seed=3, accounts=3, days=2, plant=False)
    source = tmp / "sources" / "metering.duckdb"
    for path, rows, statements in ((source, usage, metering_sql),
                                   (tmp / "sources" / "billing.duckdb", [], billing_sql)):
        con = duckdb.connect(str(path))
        try:
            if rows:
                con.executemany("INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            for sql in statements:
                con.execute(sql)
        finally:
            con.close()
    (tmp / "meterline.toml").write_text(
        '[sources]\nstripe_fixture = "sources/stripe"\n'
        'metering_url = "duckdb:///sources/metering.duckdb"\n'
        'billing_url = "duckdb:///sources/billing.duckdb"\n'
        '[warehouse]\nurl = "duckdb:///.meterline/warehouse.duckdb"\n'
        '[pipeline]\nexports_dir = "exports"\nstate_dir = ".meterline"\n')
    cfg = load_config(tmp / "meterline.toml", env={})
    ingest_days(cfg, WORLD_NIGHTS, progress=lambda _: None)
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)  # and meterline's ledger tables, empty: nothing closed yet
    dbt.build(cfg, extra=["--select", *select] if select else None)
    return cfg, source


def _quarantined_by_project(conn: Connection) -> dict[str, list[str]]:
    """The metering rows of fct_quarantine: project -> reasons (one per quarantined row)."""
    out: dict[str, list[str]] = {}
    for r in conn.fetch_dicts("SELECT project_id, reason, row_json FROM marts.fct_quarantine "
                              "WHERE source = 'metering'"):
        project = r["project_id"] or json.loads(r["row_json"])["project_id"]
        out.setdefault(project, []).append(r["reason"])
    return {k: sorted(v) for k, v in out.items()}


MALFORMED = [
    (HOUR, "acct_0001", "proj_negative", "error", "accepted", -7, WRITTEN),
    (HOUR, None, "proj_no_account", "error", "accepted", 11, WRITTEN),
    (HOUR, "", "proj_empty_account", "error", "accepted", 13, WRITTEN),
    (HOUR, "acct_ghost", "proj_unknown_account", "error", "accepted", 17, WRITTEN),
    (HOUR, "acct_0001", "proj_unknown_category", "bogus", "accepted", 19, WRITTEN),
    (HOUR, "acct_0001", "proj_unknown_outcome", "error", "weird", 23, WRITTEN),
    (None, "acct_0001", "proj_no_hour", "error", "accepted", 29, WRITTEN),
    (HOUR, "acct_badcur", "proj_invalid_currency", "error", "accepted", 37, WRITTEN),
]
COPY_ONE_ROW = (  # an exact copy of a real accepted row of the first night
    "INSERT INTO usage_hourly SELECT * FROM usage_hourly WHERE account_id = 'acct_0001' "
    "AND outcome = 'accepted' AND updated_at >= '2026-10-01' AND updated_at < '2026-10-02' "
    "AND hour_start < '2026-10-02' ORDER BY ALL LIMIT 1")
BAD_BILLING = [
    # an account with an invalid currency: quarantined, so its usage has no known account
    "INSERT INTO accounts SELECT 'acct_badcur', name, 'XXY', billing_anchor_day, "
    "stripe_customer_id || '_bad', created_at FROM accounts WHERE account_id = 'acct_0001'",
    # a currency mismatch: the account is in EUR, its plan in USD, so its usage is unpriced
    "UPDATE accounts SET currency = 'EUR' WHERE account_id = 'acct_0002'",
]


@pytest.mark.slow
def test_malformed_rows_through_the_build_keep_the_invariants(tmp_path: Path) -> None:
    """Negative quantities, missing and unknown accounts, an unknown category and outcome, an
    exact copy, a missing hour, an account with an invalid currency and one whose plan is in
    another currency: every planted row is quarantined with its reason or left unpriced, and
    usage is conserved from the metering source to billed + included + held + over budget +
    unpriced + quarantined units; invoices = their lines, the journal balances."""
    cfg, source = _built_world(tmp_path, MALFORMED, [COPY_ONE_ROW], BAD_BILLING)
    with connect(cfg.warehouse) as conn:
        by_project = _quarantined_by_project(conn)
        planted = {row[2]: by_project.get(row[2]) for row in MALFORMED}
        assert planted == {
            "proj_negative": ["negative_quantity"], "proj_no_account": ["missing_account"],
            "proj_empty_account": ["missing_account"], "proj_unknown_account": ["unknown_account"],
            "proj_unknown_category": ["unknown_category"], "proj_unknown_outcome": ["unknown_outcome"],
            "proj_no_hour": ["unparsable_timestamp"], "proj_invalid_currency": ["unknown_account"]}
        assert {p: r for p, r in by_project.items() if p not in planted} == {"proj_0001_1": ["duplicate_key"]}
        assert conn.fetchall("SELECT DISTINCT raw_table, reason, account_id FROM marts.fct_quarantine "
                             "WHERE source = 'billing'") == [("billing_accounts", "invalid_currency", "acct_badcur")]
        mismatch = conn.fetchall("SELECT DISTINCT unpriced_reason, billed_quantity FROM "
                                 "intermediate.int_usage_rated WHERE account_id = 'acct_0002'")
        assert mismatch == [("currency_mismatch", 0)]
        usage, *_ = check_all(conn, source)
    assert usage.counted["quarantined units"] > 0 and usage.counted["unpriced units"] > 0
    assert usage.counted["billed units"] > 0  # acct_0001 is still billed


GAPS = [
    (HOUR, "acct_0001", "proj_no_written", "error", "accepted", 31, None),
    (None, "acct_0001", "proj_no_times", "error", "accepted", 41, None),
    (None, "acct_0001", "proj_no_times_twice", "error", "accepted", 43, None),
    (None, "acct_0001", "proj_no_times_twice", "error", "accepted", 43, None),
    (HOUR, "acct_ghost", "proj_restated", "error", "accepted", 17, WRITTEN),
    (HOUR, "acct_ghost", "proj_restated", "error", "accepted", 20, WRITTEN + dt.timedelta(hours=1)),
]


@pytest.fixture(scope="module")
def gaps_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path]:
    """The known gaps below, on their own world (the usage models and seeds only, no data
    tests: these rows are the gaps). A failure to build it is an error, not an expected failure
    (`raises=AssertionError`)."""
    return _built_world(tmp_path_factory.mktemp("gaps"), GAPS, [], [],
                        select=["+fct_quarantine", "+fct_billable_usage", "+int_usage_rated",
                                "--resource-type", "model", "--resource-type", "seed"])


@pytest.mark.slow
def test_a_row_without_updated_at_is_quarantined_once_and_conserved(gaps_world: tuple[Config, Path]) -> None:
    """A row with an hour and no update time is no version of anything: the night of its hour
    pulls it (no other night), it is quarantined once, and its units are conserved."""
    cfg, source = gaps_world
    with connect(cfg.warehouse) as conn:  # dbt, in this process, holds a writer
        by_project = _quarantined_by_project(conn)
        fig = usage_conservation(conn, source)
    print(fig, fig.violations, {p: by_project.get(p) for p in ("proj_no_written", "proj_no_times")})
    assert by_project["proj_no_written"] == ["unparsable_timestamp"]
    assert [v for v in fig.violations if v[1] == ("acct_0001", "error", PLANTED_PERIOD)] == []


def _no_time_rows(conn: Connection) -> list[tuple[str, str]]:
    """(project, batch id) of each listed quarantined metering row that has no time at all."""
    rows = conn.fetch_dicts("SELECT row_json, _batch_id FROM marts.fct_quarantine "
                            "WHERE source = 'metering' AND row_json IS NOT NULL")
    return sorted((j["project_id"], r["_batch_id"]) for r in rows
                  for j in [json.loads(r["row_json"])]
                  if j.get("hour_start") is None and j.get("updated_at") is None)


@pytest.mark.slow
def test_a_row_without_any_time_is_listed_once(gaps_world: tuple[Config, Path]) -> None:
    """A row with neither an hour nor an update time belongs to no night, so both nights pull it;
    fct_quarantine lists it once, from the first night's batch. Two identical such rows are two
    rows, listed twice."""
    cfg, _ = gaps_world
    with connect(cfg.warehouse) as conn:  # dbt, in this process, holds a writer
        by_project = _quarantined_by_project(conn)
        pulled = conn.fetchall("SELECT count(*) FROM raw.quarantine WHERE row_json LIKE '%proj_no_times\"%'")
        listed = _no_time_rows(conn)
    assert pulled == [(2,)]  # each night read it: the batch ledger's count is the batch's own
    assert by_project["proj_no_times"] == ["unparsable_timestamp"]
    assert by_project["proj_no_times_twice"] == ["unparsable_timestamp", "unparsable_timestamp"]
    first_night = f"metering_{WORLD_NIGHTS[0]:%Y%m%d}T0000_"
    assert [p for p, b in listed if b.startswith(first_night)] == [
        "proj_no_times", "proj_no_times_twice", "proj_no_times_twice"]
    assert len(listed) == 3


@pytest.mark.slow
def test_a_row_without_any_time_is_listed_once_after_a_reload(tmp_path: Path) -> None:
    """The first night is reloaded (its source changed: its batch leaves raw, a new one comes):
    the row with no time is still listed once, from the reloaded first night."""
    from meterline import dbt
    from meterline.runner import ingest_days

    no_times = [row for row in GAPS if row[2] == "proj_no_times"]
    cfg, source = _built_world(tmp_path, no_times, [], [],
                               select=["+fct_quarantine", "--resource-type", "model",
                                       "--resource-type", "seed"])
    with connect(cfg.warehouse) as conn:
        before = _no_time_rows(conn)
    import duckdb

    con = duckdb.connect(str(source))
    try:
        con.execute("INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [HOUR, "acct_0001", "proj_late_add", "error", "accepted", 3, WRITTEN])
    finally:
        con.close()
    actions = ingest_days(cfg, WORLD_NIGHTS[:1], progress=lambda _: None)
    assert any(a["source"] == "metering" and a["action"] != "skipped" for a in actions), actions
    dbt.build(cfg, extra=["--select", "+fct_quarantine", "--resource-type", "model",
                          "--resource-type", "seed"])
    with connect(cfg.warehouse) as conn:
        after = _no_time_rows(conn)
    assert len(before) == 1 and len(after) == 1, (before, after)
    assert before[0][1] != after[0][1]  # the first night's new batch
    assert after[0][1].startswith(f"metering_{WORLD_NIGHTS[0]:%Y%m%d}T0000_")


@pytest.mark.slow
def test_a_restated_row_of_an_unknown_account_is_conserved(gaps_world: tuple[Config, Path]) -> None:
    cfg, source = gaps_world
    with connect(cfg.warehouse) as conn:  # dbt, in this process, holds a writer
        fig = usage_conservation(conn, source)
    print(fig, fig.violations)
    assert [v for v in fig.violations if v[1] == ("acct_ghost", "error", PLANTED_PERIOD)] == []
