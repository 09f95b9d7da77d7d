"""Extractors for the metering store and the billing database, streamed in chunks.

The metering store is a SQL database (DuckDB file, PostgreSQL, any SQLAlchemy URL) or Parquet /
CSV files (`sources.metering_path`, a path or a glob, `sources.metering_format`); the billing
database is a SQL database. Every extractor returns, per raw table, a lazy iterator of Arrow
record batches (`pipeline.chunk_rows` rows at most): nothing is read until the loader pulls,
and a source that fails mid-read raises a `SourceError` naming it, inside the load
transaction, so that source's batch loads nothing. Window rules are in docs/sources.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from ingest.raw_schema import RAW_TABLES
from ingest.readers import Reader, as_datetime, file_source, open_reader, quote, text_timestamp
from meterline.config import Config
from meterline.errors import SourceError

BILLING_SNAPSHOTS = {
    "billing_accounts": "accounts",
    "billing_plans": "plans",
    "billing_subscriptions": "subscriptions",
    "billing_price_books": "price_books",
    "billing_credits": "credits",
    "billing_commitments": "commitments",
    "billing_discounts": "discounts",
    "billing_spike_releases": "spike_releases",
}


def _cols(raw_table: str) -> str:
    return ", ".join(quote(c) for c, _ in RAW_TABLES[raw_table])


def _time(reader: Reader, column: str, kind: str = "TIMESTAMP") -> str:
    col = quote(column)
    if reader.kind == "files" and reader.text_times:
        col = text_timestamp(col) if kind == "TIMESTAMP" else f"try_cast({col} AS {kind})"
    return col


def _night_versions(reader: Reader, column: str, kind: str, day: tuple[Any, Any],
                    window_start: Any, start: dt.datetime, end: dt.datetime) -> tuple[str, list]:
    """The versions night D pulls, each version of the source in exactly one night:
    written during D (`updated_at` in [D, D + 1)) for a time in [D - late window, D + 1); and
    written before D for a time in D itself (a writer's clock behind the events' clock: no
    earlier night pulls a time of D, as each pulls only times before its own end). A row
    missing one of the two (quarantined: it is no version) goes with the night of the other;
    a row missing both has no night and is pulled by every night (docs/reliability.md)."""
    time, written = _time(reader, column, kind), _time(reader, "updated_at")
    sql = (f"(({time} >= ? AND {time} < ? AND {written} >= ? AND {written} < ?) "
           f"OR ({time} >= ? AND {time} < ? AND {written} < ?) "
           f"OR ({time} IS NULL AND ({written} IS NULL OR ({written} >= ? AND {written} < ?))) "
           f"OR ({written} IS NULL AND {time} >= ? AND {time} < ?))")
    return sql, [window_start, day[1], start, end, day[0], day[1], start, start, end, day[0], day[1]]


def _stream(cfg: Config, source: str, table: str, build: Any) -> Iterator[pa.RecordBatch]:
    """Open the source when the loader first pulls, stream, always close."""
    reader = open_reader(cfg, source, table)
    try:
        sql, params = build(reader)
        yield from reader.stream(sql, params, cfg.get("pipeline", "chunk_rows"))
    finally:
        reader.close()


class SourceStream(Iterator[pa.RecordBatch]):
    """One source relation's chunks, read lazily (nothing is opened until the first pull).

    For Parquet / CSV files, `direct_scan()` also gives the windowed scan as DuckDB SQL
    (`read_parquet` / `read_csv` with `?` parameters), so a DuckDB warehouse can run the scan,
    checks and insert itself instead of pulling chunks through Python (`ingest.load`).
    `fresh()` restarts the stream from the beginning.
    """

    def __init__(self, cfg: Config, source: str, table: str, build: Any):
        self.cfg, self.source, self.table, self.build = cfg, source, table, build
        self._it: Iterator[pa.RecordBatch] | None = None

    def __iter__(self) -> SourceStream:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._it is None:
            self._it = self.fresh()
        return next(self._it)

    def fresh(self) -> Iterator[pa.RecordBatch]:
        return _stream(self.cfg, self.source, self.table, self.build)

    def direct_scan(self) -> tuple[str, list] | None:
        if file_source(self.cfg, self.source) is None:
            return None
        reader = open_reader(self.cfg, self.source, self.table)
        try:
            return self.build(reader)
        finally:
            reader.close()


def probe(cfg: Config, source: str) -> None:
    """Fail fast, naming the source, when it cannot be reached at all."""
    table = cfg.get("sources", "metering_table") if source == "metering" else "accounts"
    reader = open_reader(cfg, source, table)
    try:
        reader.fetchone(f"SELECT 1 FROM {reader.relation} LIMIT 1")
    finally:
        reader.close()


def metering_coverage(cfg: Config) -> tuple[dt.date, dt.date]:
    """First and last day with any usage in the metering store."""
    reader = open_reader(cfg, "metering", cfg.get("sources", "metering_table"))
    try:
        col = quote("hour_start")
        if reader.kind == "files":
            col = text_timestamp(col)
        row = reader.fetchone(f"SELECT min({col}), max({col}) FROM {reader.relation}")
    finally:
        reader.close()
    first, last = (as_datetime(row[0]), as_datetime(row[1])) if row else (None, None)
    if first is None or last is None:
        raise SourceError("metering source: no usage rows")
    return first.date(), last.date()


def _interval(cfg: Config, day: dt.date) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    return start, end, start - dt.timedelta(days=cfg.get("pipeline", "late_window_days"))


def extract_metering(cfg: Config, day: dt.date) -> dict[str, Iterator[pa.RecordBatch]]:
    """Usage versions written during `day` for hours in [day - late window, day + 1), and those
    of `day`'s own hours written before it (`_night_versions`)."""
    start, end, window_start = _interval(cfg, day)

    def build(reader: Reader) -> tuple[str, list]:
        where, params = _night_versions(reader, "hour_start", "TIMESTAMP", (start, end), window_start, start, end)
        return f"SELECT {_cols('metering_usage_hourly')} FROM {reader.relation} WHERE {where}", params

    return {"metering_usage_hourly": SourceStream(cfg, "metering",
                                                  cfg.get("sources", "metering_table"), build)}


def extract_billing(cfg: Config, day: dt.date) -> dict[str, Iterator[pa.RecordBatch]]:
    """Full snapshots of the billing tables in `BILLING_SNAPSHOTS`; counter versions of `day`."""
    start, end, window_start = _interval(cfg, day)
    out: dict[str, Iterator[pa.RecordBatch]] = {}
    for raw_table, src_table in BILLING_SNAPSHOTS.items():
        def snapshot(reader: Reader, raw_table: str = raw_table) -> tuple[str, list]:
            return f"SELECT {_cols(raw_table)} FROM {reader.relation}", []

        out[raw_table] = SourceStream(cfg, "billing", src_table, snapshot)

    def counters(reader: Reader) -> tuple[str, list]:
        where, params = _night_versions(reader, "day", "DATE", (start.date(), end.date()), window_start.date(),
                                        start, end)
        return f"SELECT {_cols('billing_usage_counters')} FROM {reader.relation} WHERE {where}", params

    out["billing_usage_counters"] = SourceStream(cfg, "billing", "usage_counters", counters)
    return out
