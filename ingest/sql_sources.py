"""Extractors for the SQL sources: the metering store and the billing database.

Both read through the same connection layer as the warehouse (a DuckDB file or a PostgreSQL
database and schema). Window rules are in docs/sources.md.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from ingest.arrow_types import to_raw_table
from ingest.raw_schema import RAW_TABLES
from meterline.config import Config
from meterline.errors import MeterlineError, SourceError
from meterline.warehouse import Connection, open_connection, quote_ident

BILLING_SNAPSHOTS = {
    "billing_accounts": "accounts",
    "billing_plans": "plans",
    "billing_subscriptions": "subscriptions",
    "billing_price_books": "price_books",
}


def _open(cfg: Config, name: str) -> Connection:
    try:
        return open_connection(cfg.source_target(name), read_only=True, what=f"{name} source")
    except MeterlineError as exc:
        raise SourceError(str(exc)) from exc


def _table(cfg: Config, name: str, table: str) -> str:
    schema = cfg.get("sources", f"{name}_schema")
    return f"{quote_ident(schema)}.{quote_ident(table)}" if schema else quote_ident(table)


def _select(conn: Connection, sql: str, params: list, raw_table: str, source: str) -> pa.Table:
    try:
        if conn.kind == "duckdb":
            data = conn.fetch_arrow(sql, params)
        else:
            data = conn.fetch_dicts(sql, params)  # type: ignore[assignment]
    except Exception as exc:  # noqa: BLE001 - any driver error means the source is unreadable
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SourceError(f"{source} source: cannot read ({first})") from exc
    return to_raw_table(raw_table, data)


def _cols(raw_table: str) -> str:
    return ", ".join(quote_ident(c) for c, _ in RAW_TABLES[raw_table])


def metering_coverage(cfg: Config) -> tuple[dt.date, dt.date]:
    """First and last day with any usage in the metering store."""
    conn = _open(cfg, "metering")
    try:
        row = conn.fetchone(
            f"SELECT min(hour_start), max(hour_start) FROM {_table(cfg, 'metering', cfg.get('sources', 'metering_table'))}"
        )
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"metering source: cannot read ({str(exc).splitlines()[0]})") from exc
    finally:
        conn.close()
    if not row or row[0] is None:
        raise SourceError("metering source: no usage rows")
    return row[0].date(), row[1].date()


def extract_metering(cfg: Config, day: dt.date) -> dict[str, pa.Table]:
    """Usage versions written during `day` for hours in [day - late window, day + 1)."""
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    window_start = start - dt.timedelta(days=cfg.get("pipeline", "late_window_days"))
    conn = _open(cfg, "metering")
    try:
        table = _select(
            conn,
            f"SELECT {_cols('metering_usage_hourly')} FROM "
            f"{_table(cfg, 'metering', cfg.get('sources', 'metering_table'))} "
            "WHERE hour_start >= ? AND hour_start < ? AND updated_at >= ? AND updated_at < ?",
            [window_start, end, start, end],
            "metering_usage_hourly",
            "metering",
        )
    finally:
        conn.close()
    return {"metering_usage_hourly": table}


def extract_billing(cfg: Config, day: dt.date) -> dict[str, pa.Table]:
    """Snapshots of accounts, plans, subscriptions and price books; counter versions of `day`."""
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    window_start = (start - dt.timedelta(days=cfg.get("pipeline", "late_window_days"))).date()
    out: dict[str, pa.Table] = {}
    conn = _open(cfg, "billing")
    try:
        for raw_table, src_table in BILLING_SNAPSHOTS.items():
            out[raw_table] = _select(
                conn,
                f"SELECT {_cols(raw_table)} FROM {_table(cfg, 'billing', src_table)}",
                [],
                raw_table,
                "billing",
            )
        out["billing_usage_counters"] = _select(
            conn,
            f"SELECT {_cols('billing_usage_counters')} FROM {_table(cfg, 'billing', 'usage_counters')} "
            "WHERE day >= ? AND day < ? AND updated_at >= ? AND updated_at < ?",
            [window_start, end.date(), start, end],
            "billing_usage_counters",
            "billing",
        )
    finally:
        conn.close()
    return out
