"""Issue 10, case 9: DST changes, account time zones, events within one second of a period
boundary: each counted exactly once.

How meterline treats time (docs/sources.md, DECISIONLOG "Billing periods are calendar months",
"Metering versions"): every time is UTC. Night D is `[D, D + 1)` UTC; it pulls the metering
versions whose `updated_at` is in `[D, D + 1)` (and `hour_start` in `[D - late window, D + 1)`),
so each version belongs to one night. A billing period is a calendar month `[first, first of
next)` UTC; usage belongs to the period of its UTC `hour_start` day. Stripe objects are placed by
their epoch `created`. Accounts have no time zone: the billing contract has none, and a column a
billing database has beyond the contract is never extracted.

The sources here are hand-made and small: PostgreSQL (psycopg's COPY reader, and SQLAlchemy)
with TIMESTAMPTZ columns in a database whose session time zone is Europe/Berlin or
America/New_York; DuckDB files with TIMESTAMPTZ columns, Parquet files with zoned timestamps and
CSV files with ISO offsets, read on a host whose time zone is that zone (TZ). They go through the
real extractors and loader (`extract_metering`, `load_batch`) into a DuckDB warehouse; the period
test runs the dbt models up to `fct_billable_usage` on top. Before the fix that came with this
file, a session or host outside UTC moved every night's window by the zone's offset, read zoned
text as local wall-clock time (DuckDB's cast of text to TIMESTAMP drops the offset) and, on the
25-hour day, folded two UTC hours into one key: one hour quarantined as a duplicate, lost.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.load import ensure_raw, load_batch
from ingest.sql_sources import extract_billing, extract_metering
from meterline.config import Config, load_config
from meterline.runner import night_of, period_of
from meterline.source_contract import BILLING_TABLES, METERING_TABLES
from meterline.warehouse import connect

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)
T0 = dt.datetime(2027, 1, 1)  # extraction stamp (audit only)
USAGE_COLS = [c for c, _ in METERING_TABLES["usage_hourly"]]
# the local days of 2026 with 23 and 25 hours
DST_DAYS = {"Europe/Berlin": (dt.date(2026, 3, 29), dt.date(2026, 10, 25)),
            "America/New_York": (dt.date(2026, 3, 8), dt.date(2026, 11, 1))}
PG_KINDS = ("postgres", "postgres_sqlalchemy")
ZONED_KINDS = (*PG_KINDS, "duckdb", "parquet", "csv")


def kinds(*names: str) -> list[Any]:
    return [pytest.param(k, marks=pytest.mark.postgres) if k in PG_KINDS else k for k in names]


@contextlib.contextmanager
def host_zone(zone: str) -> Iterator[None]:
    """The process's time zone (TZ), as on a host configured in `zone`: DuckDB sessions opened
    meanwhile default to it."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        got = duckdb.connect().execute("SELECT current_setting('TimeZone')").fetchone()[0]
        assert got == zone, f"a DuckDB session here is in {got}, not {zone}: the test would prove nothing"
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def row(hour: dt.datetime, project: str, quantity: int, updated: dt.datetime,
        account: str = "acct_tz") -> dict[str, Any]:
    """One usage_hourly row; times are aware (UTC)."""
    return {"hour_start": hour, "account_id": account, "project_id": project, "category": "error",
            "outcome": "accepted", "quantity": quantity, "updated_at": updated}


def write_config(base: Path, sources: dict[str, str]) -> Config:
    lines = ["[sources]", *(f'{k} = "{v}"' for k, v in sources.items()),
             "[pipeline]", "late_window_days = 3", "chunk_rows = 50"]
    (base / "meterline.toml").write_text("\n".join(lines) + "\n")
    return load_config(base / "meterline.toml", env={})


def write_metering(kind: str, zone: str, rows: list[dict[str, Any]], base: Path,
                   pg_url: str | None) -> dict[str, str]:
    """The rows as a metering source of `kind` whose times carry `zone`; its [sources] keys."""
    local = ZoneInfo(zone)
    if kind in PG_KINDS:
        import psycopg

        assert pg_url is not None
        db = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"ALTER DATABASE \"{db}\" SET timezone TO '{zone}'")
        with psycopg.connect(pg_url, autocommit=True) as con:
            assert con.execute("SHOW TimeZone").fetchone()[0] == zone  # every new session
            con.execute("CREATE TABLE usage_hourly (hour_start timestamptz, account_id text, "
                        "project_id text, category text, outcome text, quantity bigint, "
                        "updated_at timestamptz)")
            with con.cursor() as cur:
                cur.executemany("INSERT INTO usage_hourly VALUES (%s, %s, %s, %s, %s, %s, %s)",
                                [tuple(r[c] for c in USAGE_COLS) for r in rows])
        url = pg_url if kind == "postgres" else pg_url.replace("postgresql://", "postgresql+psycopg://")
        return {"metering_url": url}
    if kind == "duckdb":
        con = duckdb.connect(str(base / "metering.duckdb"))
        con.execute("CREATE TABLE usage_hourly (hour_start TIMESTAMPTZ, account_id VARCHAR, "
                    "project_id VARCHAR, category VARCHAR, outcome VARCHAR, quantity BIGINT, "
                    "updated_at TIMESTAMPTZ)")
        con.executemany("INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [tuple(r[c] for c in USAGE_COLS) for r in rows])
        con.close()
        return {"metering_url": f"duckdb:///{base / 'metering.duckdb'}"}
    (base / "usage").mkdir()
    if kind == "parquet":  # zoned timestamps (isAdjustedToUTC), read by DuckDB as TIMESTAMPTZ
        zoned = pa.timestamp("us", tz=zone)
        types = {"hour_start": zoned, "updated_at": zoned, "quantity": pa.int64()}
        pq.write_table(pa.table({c: pa.array([r[c] for r in rows], types.get(c, pa.string()))
                                 for c in USAGE_COLS}), base / "usage" / "part-0.parquet")
        return {"metering_path": "usage/*.parquet", "metering_format": "parquet"}
    if kind == "csv":  # ISO 8601 text with the local offset: 2026-10-25T02:00:00+01:00
        with (base / "usage" / "part-0.csv").open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(USAGE_COLS)
            for r in rows:
                out.writerow([r[c].astimezone(local).isoformat() if isinstance(r[c], dt.datetime)
                              else r[c] for c in USAGE_COLS])
        return {"metering_path": "usage/*.csv", "metering_format": "csv"}
    if kind == "sqlite":  # no time type: naive UTC text, as the contract asks
        con = sqlite3.connect(base / "metering.db")
        con.execute(f"CREATE TABLE usage_hourly ({', '.join(USAGE_COLS)})")
        con.executemany("INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [tuple(str(naive(r[c])) if isinstance(r[c], dt.datetime) else r[c]
                               for c in USAGE_COLS) for r in rows])
        con.commit()
        con.close()
        return {"metering_url": "sqlite:///metering.db"}
    raise AssertionError(kind)


def load_nights(cfg: Config, days: list[dt.date], billing: bool = False) -> tuple[list[tuple], int]:
    """Ingest each night with the real extractors and loader. The raw usage rows with the
    interval of the batch that loaded them, and the number of rows quarantined."""
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        for day in days:
            start = dt.datetime.combine(day, dt.time())
            extracts = [("metering", extract_metering)]
            if billing:
                extracts.insert(0, ("billing", extract_billing))
            for source, extract in extracts:
                res = load_batch(conn, source, start, start + dt.timedelta(days=1),
                                 extract(cfg, day), T0, max_quarantine_share=None, chunk_rows=50)
                assert res.action == "loaded", res
        quarantined = conn.fetchone("SELECT count(*) FROM raw.quarantine")[0]
        return conn.fetchall(
            "SELECT r.hour_start, r.project_id, r.quantity, r.updated_at, b.interval_start "
            "FROM raw.metering_usage_hourly r JOIN raw.batch_ledger b ON b.batch_id = r._batch_id"
        ), quarantined


def tally(rows: list[dict[str, Any]], raw: list[tuple], quarantined: int) -> dict[str, int]:
    """Each source row (identified by its quantity) against raw: loaded once with its UTC hour,
    its update time and by the night its update time falls in; lost (quarantined or not
    pulled); doubled; moved (another hour, update time or night)."""
    want = {r["quantity"]: (naive(r["hour_start"]), r["project_id"], naive(r["updated_at"]),
                            dt.datetime.combine(naive(r["updated_at"]).date(), dt.time()))
            for r in rows}
    seen = Counter(q for _, _, q, _, _ in raw)
    got = {q: (h, p, u, night) for h, p, q, u, night in raw}
    return {"once": sum(1 for q in want if seen[q] == 1 and got[q] == want[q]),
            "lost": sum(1 for q in want if seen[q] == 0),
            "doubled": sum(1 for q in want if seen[q] > 1),
            "moved": sum(1 for q in want if seen[q] == 1 and got[q] != want[q]),
            "unknown": sum(1 for q in seen if q not in want),
            "quarantined": quarantined}


def utc_nights(first: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The UTC days that `[first, end)` touches."""
    days, d = [], naive(first).date()
    while dt.datetime.combine(d, dt.time()) < naive(end):
        days.append(d)
        d += dt.timedelta(days=1)
    return days


# ------------------------------------------------------------------------------------------------
# DST: the 23-hour and the 25-hour local day


@pytest.mark.parametrize("zone", sorted(DST_DAYS))
@pytest.mark.parametrize("kind", kinds(*ZONED_KINDS))
def test_dst_days_count_every_utc_hour_once(kind: str, zone: str, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    pg_url = request.getfixturevalue("pg_url") if kind in PG_KINDS else None
    local = ZoneInfo(zone)
    spans = []  # (local day, its UTC start and end)
    for day in DST_DAYS[zone]:
        start = dt.datetime.combine(day, dt.time(), local).astimezone(UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), local).astimezone(UTC)
        spans.append((day, start, end))
    assert sorted((e - s) // HOUR for _, s, e in spans) == [23, 25]  # the premise
    nights = sorted({n for _, s, e in spans for n in utc_nights(s, e)})
    # every UTC hour of those nights, one row each, written half an hour into the hour
    hours = [dt.datetime.combine(n, dt.time(), UTC) + i * HOUR for n in nights for i in range(24)]
    rows = [row(h, "p", q, h + dt.timedelta(minutes=30)) for q, h in enumerate(hours, 1)]
    with host_zone(zone):
        cfg = write_config(tmp_path, write_metering(kind, zone, rows, tmp_path, pg_url))
        # plus the night before and after each DST change: they must pull nothing
        around = sorted({d + dt.timedelta(days=k) for d in nights for k in (-1, 0, 1)})
        raw, quarantined = load_nights(cfg, around)
    t = tally(rows, raw, quarantined)
    local_hours = {day: sum(1 for h, *_ in raw if naive(s) <= h < naive(e)) for day, s, e in spans}
    print(f"\nDST {kind} {zone}: local days "
          + ", ".join(f"{d} of {(e - s) // HOUR} h ({local_hours[d]} UTC hours loaded)"
                      for d, s, e in spans)
          + f"; {len(rows)} UTC hours in {len(nights)} nights ({len(around)} ingested): "
          f"{t['once']} once, {t['lost']} lost, {t['doubled']} doubled, {t['moved']} moved, "
          f"{t['quarantined']} quarantined")
    assert t == {"once": len(rows), "lost": 0, "doubled": 0, "moved": 0, "unknown": 0,
                 "quarantined": 0}
    assert {d: (e - s) // HOUR for d, s, e in spans} == local_hours


# ------------------------------------------------------------------------------------------------
# Within one second of the night and month boundary 2026-11-01T00:00Z

MONTH_END = dt.datetime(2026, 11, 1, tzinfo=UTC)
LAST_HOUR, FIRST_HOUR = MONTH_END - HOUR, MONTH_END  # 2026-10-31T23:00Z, 2026-11-01T00:00Z
# (hour_start, updated_at) per project; quantities are powers of two, so a sum names its rows
BOUNDARY = {
    "p_minus_1us": (LAST_HOUR, MONTH_END - dt.timedelta(microseconds=1)),
    "p_minus_1s": (LAST_HOUR, MONTH_END - SECOND),
    "p_at": (LAST_HOUR, MONTH_END),
    "p_plus_1s": (LAST_HOUR, MONTH_END + SECOND),
    "p_first_at": (FIRST_HOUR, MONTH_END),
    "p_first_plus_1s": (FIRST_HOUR, MONTH_END + SECOND),
}


def boundary_rows(account: str = "acct_tz") -> list[dict[str, Any]]:
    return [row(h, p, 2**i, u, account) for i, (p, (h, u)) in enumerate(BOUNDARY.items())]


@pytest.mark.parametrize("zone", ["America/New_York", "Pacific/Kiritimati"])
@pytest.mark.parametrize("kind", kinds(*ZONED_KINDS, "sqlite"))
def test_a_second_either_side_of_midnight_lands_in_one_night_and_one_period(
        kind: str, zone: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # New York is 4 h behind UTC here (2026-11-01T00:00Z is 20:00 on October 31), Kiritimati
    # 14 h ahead (2026-10-31T23:00Z is 13:00 on November 1): a local reading moves both months
    pg_url = request.getfixturevalue("pg_url") if kind in PG_KINDS else None
    rows = boundary_rows()
    with host_zone(zone):
        cfg = write_config(tmp_path, write_metering(kind, zone, rows, tmp_path, pg_url))
        raw, quarantined = load_nights(cfg, [dt.date(2026, 10, d) for d in (30, 31)]
                                       + [dt.date(2026, 11, d) for d in (1, 2)])
    t = tally(rows, raw, quarantined)
    nights = Counter(f"{night:%m-%d}" for *_, night in raw)
    periods = Counter()
    for h, _, q, _, _ in raw:
        periods[f"{h:%Y-%m}"] += q
    print(f"\nboundary {kind} {zone}: updated_at 2026-11-01T00:00Z -1 us, -1 s -> night 10-31 "
          f"({nights['10-31']} rows), at and +1 s -> night 11-01 ({nights['11-01']} rows), "
          f"nights 10-30 and 11-02 {nights['10-30'] + nights['11-02']} rows; hour 23:00Z -> "
          f"2026-10 (sum {periods['2026-10']}), hour 00:00Z -> 2026-11 (sum {periods['2026-11']}); "
          f"{t['once']} once, {t['lost']} lost, {t['doubled']} doubled, {t['moved']} moved, "
          f"{t['quarantined']} quarantined")
    assert t == {"once": 6, "lost": 0, "doubled": 0, "moved": 0, "unknown": 0, "quarantined": 0}
    assert dict(nights) == {"10-31": 2, "11-01": 4}
    assert dict(periods) == {"2026-10": 1 + 2 + 4 + 8, "2026-11": 16 + 32}


def test_a_version_written_before_its_hour_is_loaded_once_by_its_hours_night(tmp_path: Path) -> None:
    """Clock skew: the writer's clock behind the events' clock. Night D pulls the versions
    written during D for hours before D + 1, and the versions of D's own hours written before
    D; so a version written before its hour begins is loaded once, by its hour's night."""
    rows = [row(FIRST_HOUR, "p_early", 1, MONTH_END - SECOND),  # 1 s early: the only version yet
            row(LAST_HOUR, "p_last", 2, MONTH_END - SECOND),  # on time
            row(FIRST_HOUR + DAY + 5 * HOUR, "p_days", 4, MONTH_END - DAY - 12 * HOUR),  # 2.5 days early
            row(FIRST_HOUR, "p_early", 8, MONTH_END + SECOND)]  # the next version of the first
    cfg = write_config(tmp_path, write_metering("duckdb", "UTC", rows, tmp_path, None))
    raw, quarantined = load_nights(cfg, [dt.date(2026, 10, d) for d in (29, 30, 31)]
                                   + [dt.date(2026, 11, d) for d in (1, 2, 3)])
    nights = Counter((q, f"{night:%m-%d}") for _, _, q, _, night in raw)
    print(f"\nclock skew: versions written 1 s and 2.5 days before their hour: "
          f"{sum(nights.values())} of 4 rows loaded, by nights {sorted(nights)}")
    assert quarantined == 0
    assert nights == {(1, "11-01"): 1, (2, "10-31"): 1, (4, "11-02"): 1, (8, "11-01"): 1}
    assert {(q, naive(h), naive(u)) for h, _, q, u, _ in raw} == {
        (r["quantity"], naive(r["hour_start"]), naive(r["updated_at"])) for r in rows}


# ------------------------------------------------------------------------------------------------
# Stripe: epoch `created`, objects and events a second either side of midnight


def test_stripe_objects_and_events_a_second_either_side_of_midnight(tmp_path: Path) -> None:
    import json

    from ingest.stripe import StripeReader, extract_stripe_interval, make_client
    from meterline.sample import serve_stripe_fixture

    def epoch(t: dt.datetime) -> int:
        return int(t.timestamp())

    night_start = dt.datetime(2026, 10, 31, tzinfo=UTC)
    created = {  # charge id -> created; its UTC night
        "ch_start": (night_start, "10-31"),
        "ch_shard_minus_1s": (night_start + 6 * HOUR - SECOND, "10-31"),  # 4 shards of 6 h
        "ch_shard_at": (night_start + 6 * HOUR, "10-31"),
        "ch_minus_1s": (MONTH_END - SECOND, "10-31"),
        "ch_at": (MONTH_END, "11-01"),
        "ch_plus_1s": (MONTH_END + SECOND, "11-01"),
    }
    old = dt.datetime(2026, 10, 1, 12, tzinfo=UTC)  # an older charge, refunded twice around midnight

    def charge(cid: str, at: dt.datetime, refunded: int = 0) -> dict[str, Any]:
        return {"id": cid, "object": "charge", "amount": 1000, "amount_refunded": refunded,
                "currency": "usd", "status": "succeeded", "customer": "cus_tz",
                "created": epoch(at), "metadata": {}}

    events = {  # event id -> (created, refunded so far); its UTC night
        "evt_minus_1s": (MONTH_END - SECOND, 100, "10-31"),
        "evt_at": (MONTH_END, 200, "11-01"),
    }
    folder = tmp_path / "stripe"
    folder.mkdir()
    (folder / "charges.json").write_text(json.dumps(
        [charge(c, at) for c, (at, _) in created.items()] + [charge("ch_old", old, 200)]))
    (folder / "events.json").write_text(json.dumps([
        {"id": e, "object": "event", "type": "charge.refunded", "created": epoch(at),
         "data": {"object": charge("ch_old", old, refunded)}}
        for e, (at, refunded, _) in events.items()]))
    got: dict[str, list[tuple[str, Any]]] = {}
    with host_zone("Pacific/Kiritimati"), serve_stripe_fixture(folder) as base:
        reader = StripeReader(make_client("sk_test_tz", base), "sk_test_tz", shards=4,
                              max_concurrency=2)
        for day in (dt.date(2026, 10, 30), dt.date(2026, 10, 31), dt.date(2026, 11, 1),
                    dt.date(2026, 11, 2)):
            start = dt.datetime.combine(day, dt.time())
            tables = extract_stripe_interval(reader, start, start + dt.timedelta(days=1),
                                             ["charges"])
            for r in tables["stripe_charges"].to_pylist():
                got.setdefault(r["id"], []).append((f"{day:%m-%d}", r["amount_refunded"]))
            for r in tables["stripe_events"].to_pylist():
                got.setdefault(r["id"], []).append((f"{day:%m-%d}", None))
    want = {c: [(night, 0)] for c, (_, night) in created.items()}
    want["ch_old"] = [(night, refunded) for _, refunded, night in events.values()]
    want |= {e: [(night, None)] for e, (_, _, night) in events.items()}
    print(f"\nStripe: {len(created)} charges created at 00:00:00, 05:59:59, 06:00:00 (a shard "
          f"edge), 23:59:59 on 10-31 and 00:00:00, 00:00:01 on 11-01, and 2 refund events of an "
          f"older charge at 23:59:59 and 00:00:00: "
          f"{sum(1 for k in want if got.get(k) == want[k])} of {len(want)} in exactly their "
          f"night (ch_old: one version per night, "
          f"{[refunded for _, refunded in got.get('ch_old', [])]} refunded), "
          f"{sum(1 for k in want if k not in got)} lost, "
          f"{sum(1 for k in got if len(got[k]) > len(want.get(k, [])))} doubled")
    assert got == want


# ------------------------------------------------------------------------------------------------
# Airflow data intervals given in a local time zone


def test_airflow_intervals_are_utc_days_and_months_whatever_zone_they_come_in() -> None:
    from meterline.errors import IntervalError

    accepted, refused = [], []
    for zone, days in DST_DAYS.items():
        local = ZoneInfo(zone)
        for day in days:
            utc_start = dt.datetime.combine(day, dt.time(), UTC)
            # the UTC day, as a scheduler in `zone` hands it over: accepted as that night
            assert night_of(utc_start.astimezone(local),
                            (utc_start + dt.timedelta(days=1)).astimezone(local)) == day
            accepted.append(day)
            # the local day (23 or 25 hours, starting off UTC midnight): refused, never guessed
            with pytest.raises(IntervalError, match="not one day from midnight UTC"):
                night_of(dt.datetime.combine(day, dt.time(), local),
                         dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), local))
            refused.append(day)
    ny = ZoneInfo("America/New_York")
    assert period_of(MONTH_END.astimezone(ny),
                     dt.datetime(2026, 12, 1, tzinfo=UTC).astimezone(ny)) == "2026-11"
    with pytest.raises(IntervalError):  # November in New York (starts 04:00Z, has 721 hours)
        period_of(dt.datetime(2026, 11, 1, tzinfo=ny), dt.datetime(2026, 12, 1, tzinfo=ny))
    print(f"\nAirflow intervals: {len(accepted)} UTC days around DST handed over in local time "
          f"-> their UTC night; {len(refused)} local DST days (23 h, 25 h) refused; November "
          "2026 in UTC -> 2026-11, in New York time refused")


# ------------------------------------------------------------------------------------------------
# Billing periods: the dbt models, accounts with a time zone in the billing database

ACCOUNT_ZONES = {"acct_kiritimati": "Pacific/Kiritimati", "acct_pago_pago": "Pacific/Pago_Pago"}


def write_billing(path: Path) -> None:
    """A billing database by the contract, plus a `time_zone` column on accounts (UTC+14 and
    UTC-11): one USD plan, per-unit errors at 0.01, both accounts subscribed since January."""
    con = duckdb.connect(str(path))
    for table, cols in BILLING_TABLES.items():
        extra = ", time_zone VARCHAR" if table == "accounts" else ""
        con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in cols)}{extra})")
    since = dt.datetime(2026, 1, 1)
    for account, zone in ACCOUNT_ZONES.items():
        con.execute("INSERT INTO accounts VALUES (?, ?, 'USD', 1, NULL, ?, ?)",
                    [account, account, since, zone])
        con.execute("INSERT INTO subscriptions VALUES (?, ?, 'plan_usd', ?, NULL, NULL)",
                    [f"sub_{account}", account, since])
    con.execute("INSERT INTO plans VALUES ('plan_usd', 'Usage', 'USD', 0)")
    con.execute("INSERT INTO price_books (price_id, plan_id, category, effective_from, "
                "pricing_model, included_quantity, tier_start, unit_price_decimal) VALUES "
                "('price_error', 'plan_usd', 'error', DATE '2026-01-01', 'per_unit', 0, 0, ?)",
                [Decimal("0.01")])
    con.close()


def test_billing_periods_are_utc_months_whatever_the_account_or_host_zone(tmp_path: Path) -> None:
    from meterline.dbt import build

    rows = [r for account in ACCOUNT_ZONES for r in boundary_rows(account)]
    write_billing(tmp_path / "billing.duckdb")
    with host_zone("America/New_York"):  # the source, the loader and dbt's session all in New York
        sources = write_metering("duckdb", "America/New_York", rows, tmp_path, None)
        cfg = write_config(tmp_path, {**sources, "billing_url": f"duckdb:///{tmp_path / 'billing.duckdb'}"})
        # the first night opens October (no period starts before the ingested history)
        raw, quarantined = load_nights(cfg, [dt.date(2026, 10, 1), dt.date(2026, 10, 31),
                                             dt.date(2026, 11, 1)], billing=True)
        assert len(raw) == len(rows) and quarantined == 0
        build(cfg, extra=["--select", "+fct_billable_usage", "--resource-type", "model",
                          "--resource-type", "seed"])  # the models, not their data tests
        with connect(cfg.warehouse) as conn:
            billed = conn.fetchall("SELECT account_id, period, metered_quantity, amount_minor "
                                   "FROM marts.fct_billable_usage ORDER BY 1, 2")
            account_cols = [r[0] for r in conn.fetchall(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'raw' AND table_name = 'billing_accounts'")]
    print("\nperiods: accounts in " + ", ".join(f"{z} ({a})" for a, z in ACCOUNT_ZONES.items())
          + "; usage of hour 2026-10-31T23:00Z (4 rows, updated -1 us .. +1 s around midnight) and "
          "2026-11-01T00:00Z (2 rows): "
          + "; ".join(f"{a} {p}: {q} units, {m} cents" for a, p, q, m in billed)
          + f"; account time zone extracted: {'time_zone' in account_cols}")
    assert "time_zone" not in account_cols  # beyond the contract: never reaches the warehouse
    assert billed == [(a, p, q, q) for a in ACCOUNT_ZONES
                      for p, q in (("2026-10", 1 + 2 + 4 + 8), ("2026-11", 16 + 32))]
