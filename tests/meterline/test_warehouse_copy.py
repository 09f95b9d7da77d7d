"""PostgreSQL bulk load: the binary COPY path loads exactly what the CSV COPY path loaded.

Each case loads the same Arrow table twice: through `Connection.insert_arrow` (binary COPY when
every column has an exact binary encoding) and through the previous path (`_copy_csv`: Arrow
CSV text, parsed by PostgreSQL; the code that was `insert_arrow`'s, with only the header of
the first chunk now written). The two tables must agree row for row, as PostgreSQL renders
them (`t::text`, so a numeric's display scale counts too), and with the expected Python values.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import meterline.warehouse as warehouse
from meterline.config import parse_db_url
from meterline.warehouse import Connection, connect, qualified, quote_ident

pytestmark = pytest.mark.postgres

UTC = dt.UTC

COLUMNS = [
    ("id", "BIGINT"),
    ("name", "VARCHAR"),
    ("note", "TEXT"),
    ("quantity", "BIGINT"),
    ("small", "INTEGER"),
    ("amount", "DECIMAL(38,12)"),
    ("loose_amount", "NUMERIC"),
    ("minor_units", "NUMERIC(20,0)"),
    ("at", "TIMESTAMP"),
    ("at_utc", "TIMESTAMP"),
    ("at_tz", "TIMESTAMPTZ"),
    ("day", "DATE"),
    ("flag", "BOOLEAN"),
    ("nothing", "VARCHAR"),
]

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("note", pa.large_string()),
        ("quantity", pa.int64()),
        ("small", pa.int32()),
        ("amount", pa.decimal128(38, 12)),
        ("loose_amount", pa.decimal128(18, 6)),
        ("minor_units", pa.int64()),
        ("at", pa.timestamp("us")),
        ("at_utc", pa.timestamp("us", tz="UTC")),
        ("at_tz", pa.timestamp("ms", tz="UTC")),
        ("day", pa.date32()),
        ("flag", pa.bool_()),
        ("nothing", pa.null()),
    ]
)

TEXTS = [
    "plain",
    "",
    "a,b",
    'say "hi"',
    "two\nlines",
    "cr\rlf\r\n",
    "tab\there",
    "back\\slash",
    "\\N",
    "NULL",
    "é ü ß",
    "日本語",
    "emoji 🙂",
    "  padded  ",
    '","',
    "'quote'",
    "x" * 3000,
]

DECIMALS = [
    Decimal("0"),
    Decimal("1.5"),
    Decimal("-1.5"),
    Decimal("0.000000000001"),
    Decimal("-0.000000000001"),
    Decimal("1234567.123456789012"),
    Decimal("-9223372.036854775807"),
    Decimal("9223372.036854775807"),
    Decimal("0.1"),
    Decimal("100"),
    Decimal("10000.0001"),
    Decimal("0.0000001"),
    Decimal("-1E-7"),
]

TIMES = [
    dt.datetime(2026, 10, 7, 0, 0),
    dt.datetime(2026, 10, 7, 23, 59, 59, 999999),
    dt.datetime(2000, 1, 1),
    dt.datetime(1999, 12, 31, 23, 59, 59, 1),
    dt.datetime(1970, 1, 1),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.datetime(1, 1, 1),
    dt.datetime(9999, 12, 31, 23, 59, 59),
    dt.datetime(2024, 2, 29, 12, 0, 0, 500000),
]


def rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)

    def maybe(value: Any) -> Any:
        return None if rnd.random() < 0.15 else value

    out = []
    for i in range(n):
        at = TIMES[i % len(TIMES)] + dt.timedelta(microseconds=rnd.randrange(10**6))
        at = min(at, dt.datetime(9999, 12, 31, 23, 59, 59))
        amount = (
            DECIMALS[i % len(DECIMALS)]
            if i < 3 * len(DECIMALS)
            else Decimal(rnd.randrange(-(10**18), 10**18)).scaleb(-12)
        )
        out.append(
            {
                "id": i,
                "name": maybe(TEXTS[i % len(TEXTS)]),
                "note": maybe(TEXTS[(i * 7) % len(TEXTS)] + str(i)),
                "quantity": maybe(
                    rnd.choice([0, 1, -1, 2**63 - 1, -(2**63), rnd.randrange(10**12)])
                ),
                "small": maybe(rnd.choice([0, 2**31 - 1, -(2**31), rnd.randrange(1000)])),
                "amount": maybe(amount),
                "loose_amount": maybe(Decimal(rnd.randrange(-(10**15), 10**15)).scaleb(-6)),
                "minor_units": maybe(
                    rnd.choice([0, -1, 2**63 - 1, -(2**63) + 1, rnd.randrange(10**9)])
                ),
                "at": maybe(at),
                "at_utc": maybe(at.replace(tzinfo=UTC)),
                "at_tz": maybe(
                    dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
                    + dt.timedelta(milliseconds=rnd.randrange(10**9))
                ),
                "day": maybe(at.date()),
                "flag": maybe(rnd.random() < 0.5),
                "nothing": None,
            }
        )
    return out


@pytest.fixture
def conn(pg_url: str, tmp_path: Path) -> Iterator[Connection]:
    with connect(parse_db_url(pg_url, tmp_path, "test")) as c:
        c.ensure_schema("t")
        # a zone far from UTC: naive text into timestamptz would be read in it
        c.execute("SET TimeZone = 'America/St_Johns'")
        yield c


def load_both(
    conn: Connection,
    data: pa.Table,
    columns: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    binary: bool,
    chunk_rows: int = 200_000,
) -> None:
    """`new` through insert_arrow, `old` through the CSV path; assert which path `new` took."""
    conn.ensure_table("t", "new", columns)
    conn.ensure_table("t", "old", columns)
    used = []
    csv = warehouse._copy_csv
    monkeypatch.setattr(warehouse, "_copy_csv", lambda *a, **k: (used.append("csv"), csv(*a, **k)))
    with conn.transaction():
        assert conn.insert_arrow("t", "new", data, chunk_rows=chunk_rows) == data.num_rows
    assert used == ([] if binary else ["csv"])
    cols = ", ".join(quote_ident(c) for c in data.column_names)
    with conn.transaction(), conn.raw.cursor() as cur:
        csv(cur, qualified("t", "old"), cols, data, chunk_rows)


def rendered(conn: Connection, table: str) -> list[str]:
    return [r[0] for r in conn.fetchall(f"SELECT x::text FROM t.{table} x ORDER BY id")]


def test_binary_copy_loads_what_csv_copy_loaded(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = rows(3000)
    data = pa.Table.from_pylist(expected, schema=SCHEMA)
    # several Arrow chunks and several binary blocks
    data = pa.concat_tables([data.slice(0, 1000), data.slice(1000)])
    monkeypatch.setattr(warehouse, "_BINARY_BLOCK_ROWS", 700)
    load_both(conn, data, COLUMNS, monkeypatch, binary=True)

    new, old = rendered(conn, "new"), rendered(conn, "old")
    assert len(new) == 3000
    assert new == old
    # and the values are the expected ones, exactly
    got = conn.fetch_dicts("SELECT * FROM t.new ORDER BY id")
    for want, row in zip(expected, got, strict=True):
        for name in (
            "name",
            "note",
            "quantity",
            "small",
            "amount",
            "minor_units",
            "at",
            "day",
            "flag",
            "nothing",
        ):
            assert row[name] == want[name], (name, row, want)
        assert row["loose_amount"] == want["loose_amount"]
        if want["loose_amount"] is not None:
            assert str(row["loose_amount"]) == str(
                want["loose_amount"].quantize(Decimal("0.000001"))
            )
        # tz-aware Arrow time into TIMESTAMP: the UTC wall time (what the CSV path loaded)
        assert row["at_utc"] == (
            None if want["at_utc"] is None else want["at_utc"].replace(tzinfo=None)
        )
        assert row["at_tz"] == want["at_tz"]
        if want["amount"] is not None:
            assert f"{row['amount']:f}" == f"{want['amount']:.12f}"  # display scale 12
    nulls = conn.fetchone(
        "SELECT count(*) FILTER (WHERE name IS NULL), "
        "count(*) FILTER (WHERE name = ''), count(*) FILTER (WHERE amount IS NULL) "
        "FROM t.new"
    )
    assert nulls == (
        sum(r["name"] is None for r in expected),
        sum(r["name"] == "" for r in expected),
        sum(r["amount"] is None for r in expected),
    )


def test_blocks_beyond_32_bit_offsets(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks over 2 GiB are assembled with 64-bit offsets (forced here on a small table)."""
    monkeypatch.setattr(warehouse, "_MAX_INT32_OFFSET", 0)
    data = pa.Table.from_pylist(rows(300, seed=11), schema=SCHEMA)
    load_both(conn, data, COLUMNS, monkeypatch, binary=True)
    assert rendered(conn, "new") == rendered(conn, "old")


def test_raw_table_rows_load_identically(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader's real shape: a raw table with its batch stamps."""
    from ingest.arrow_types import to_raw_table
    from ingest.raw_schema import all_raw_tables

    usage = to_raw_table(
        "metering_usage_hourly",
        [
            {
                "hour_start": dt.datetime(2026, 10, 7, h % 24),
                "account_id": f"acct_{h:04d}",
                "project_id": None if h % 5 == 0 else "p,1",
                "category": "error",
                "outcome": "accepted",
                "quantity": None if h % 7 == 0 else h * 1000,
                "updated_at": dt.datetime(2026, 10, 10, 0, 0, 0, h),
            }
            for h in range(500)
        ],
    )
    n = usage.num_rows
    usage = (
        usage.append_column("_batch_id", pa.repeat(pa.scalar("metering_x"), n))
        .append_column(
            "_extracted_at", pa.repeat(pa.scalar(dt.datetime(2026, 10, 11), pa.timestamp("us")), n)
        )
        .append_column("_source", pa.repeat(pa.scalar("metering"), n))
    )
    cols = [("id", "BIGINT"), *all_raw_tables()["metering_usage_hourly"]]
    usage = usage.add_column(0, "id", pa.array(range(n), pa.int64()))
    load_both(conn, usage, cols, monkeypatch, binary=True)
    assert rendered(conn, "new") == rendered(conn, "old")


def test_billing_decimal_prices_load_exactly(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    cols = [("id", "BIGINT"), ("unit_price_decimal", "DECIMAL(38,12)")]
    prices = [
        Decimal("0.000123456789"),
        Decimal("12.5"),
        Decimal("-0.5"),
        None,
        Decimal("9223372.036854775807"),
        Decimal("-9223372.036854775807"),
    ]
    data = pa.table(
        {"id": range(len(prices)), "unit_price_decimal": pa.array(prices, pa.decimal128(38, 12))}
    )
    load_both(conn, data, cols, monkeypatch, binary=True)
    assert rendered(conn, "new") == rendered(conn, "old")
    got = [r[0] for r in conn.fetchall("SELECT unit_price_decimal FROM t.new ORDER BY id")]
    assert got == prices


@pytest.mark.parametrize(
    "case",
    [
        "big_decimal",
        "nanoseconds",
        "naive_into_timestamptz",
        "zoned_into_timestamp",
        "text_into_integer",
        "float",
    ],
)
def test_values_without_an_exact_binary_form_go_as_csv(
    case: str, conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = pa.array([0, 1, 2], pa.int64())
    if case == "big_decimal":  # unscaled value beyond 64 bits
        col, sql = (
            pa.array(
                [Decimal("12345678901234567890.123456789012"), Decimal("1"), None],
                pa.decimal128(38, 12),
            ),
            "DECIMAL(38,12)",
        )
    elif case == "nanoseconds":  # PostgreSQL rounds sub-microseconds: keep its rounding
        col, sql = (
            pa.array([1_000_000_001_500, 1_000_000_002_500, None], pa.timestamp("ns")),
            "TIMESTAMP",
        )
    elif case == "naive_into_timestamptz":  # read in the session's zone, as before
        col, sql = (
            pa.array(
                [dt.datetime(2026, 1, 1, 12), None, dt.datetime(2026, 7, 1)], pa.timestamp("us")
            ),
            "TIMESTAMPTZ",
        )
    elif case == "zoned_into_timestamp":  # written as local time and offset: wall time kept
        col, sql = (
            pa.array([0, None, 1_700_000_000_000_000], pa.timestamp("us", tz="Europe/Berlin")),
            "TIMESTAMP",
        )
    elif case == "text_into_integer":
        col, sql = pa.array(["1", "-2", None]), "BIGINT"
    else:
        col, sql = pa.array([0.1, 1e300, None]), "DOUBLE PRECISION"
    data = pa.table({"id": ids, "v": col})
    load_both(conn, data, [("id", "BIGINT"), ("v", sql)], monkeypatch, binary=False)
    assert rendered(conn, "new") == rendered(conn, "old")
    assert len(rendered(conn, "new")) == 3


def test_out_of_range_integers_fail_as_before(conn: Connection) -> None:
    conn.ensure_table("t", "narrow", [("v", "INTEGER")])
    with pytest.raises(Exception, match="out of range"):
        with conn.transaction():
            conn.insert_arrow("t", "narrow", pa.table({"v": pa.array([1, 2**40], pa.int64())}))
    with conn.transaction():  # in range: binary int4
        conn.insert_arrow("t", "narrow", pa.table({"v": pa.array([1, -(2**31), None], pa.int64())}))
    assert conn.fetchall("SELECT v FROM t.narrow ORDER BY v NULLS LAST") == [
        (-(2**31),),
        (1,),
        (None,),
    ]


def test_numeric_typmod_is_enforced_as_before(conn: Connection) -> None:
    conn.ensure_table("t", "price", [("v", "NUMERIC(6,2)")])
    with conn.transaction():  # rounded to the column's scale, like the text input
        conn.insert_arrow(
            "t",
            "price",
            pa.table(
                {
                    "v": pa.array(
                        [Decimal("1.005"), Decimal("-1.005"), Decimal("1234.994")],
                        pa.decimal128(10, 3),
                    )
                }
            ),
        )
    assert [r[0] for r in conn.fetchall("SELECT v::text FROM t.price ORDER BY v")] == [
        "-1.01",
        "1.01",
        "1234.99",
    ]
    with pytest.raises(Exception, match="numeric field overflow"):
        with conn.transaction():
            conn.insert_arrow(
                "t", "price", pa.table({"v": pa.array([Decimal("10000")], pa.decimal128(10, 0))})
            )


def test_csv_path_with_several_chunks(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: every CSV chunk carried a header line, but COPY skips only the first."""
    data = pa.table(
        {
            "id": pa.array(range(10), pa.int64()),
            "v": pa.array([Decimal(10**25) + i for i in range(10)], pa.decimal128(38, 0)),
        }
    )
    load_both(
        conn, data, [("id", "BIGINT"), ("v", "NUMERIC")], monkeypatch, binary=False, chunk_rows=3
    )
    assert rendered(conn, "new") == rendered(conn, "old")
    assert conn.fetchone("SELECT count(*), sum(v) FROM t.new") == (10, Decimal(10**26) + 45)
