"""Loading extracted batches into `raw.*`: append-only, batch-stamped, replace-or-skip per interval.

One batch per source and data interval. Its id is derived from the source, the interval and a
checksum of the content, so a rerun that pulls the same rows is recognised and skipped, and a
rerun that pulls different rows replaces the earlier batch of that interval in one transaction.
A crash mid-load rolls back: no partial batch is ever visible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

from ingest.raw_schema import BATCH_LEDGER, LEDGER_TABLES, all_raw_tables
from meterline.warehouse import Connection, qualified

RAW_SCHEMA = "raw"
LEDGER_SCHEMA = "ledger"


@dataclass(frozen=True)
class BatchResult:
    source: str
    batch_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    row_counts: dict[str, int]
    checksum: str
    action: str  # loaded | replaced | skipped_identical

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())


def ensure_raw(conn: Connection) -> None:
    """Create the raw and ledger schemas and tables if they are not there yet."""
    conn.ensure_schema(RAW_SCHEMA)
    conn.ensure_schema(LEDGER_SCHEMA)
    for name, cols in all_raw_tables().items():
        conn.ensure_table(RAW_SCHEMA, name, cols)
    conn.ensure_table(RAW_SCHEMA, "batch_ledger", BATCH_LEDGER)
    for name, cols in LEDGER_TABLES.items():
        conn.ensure_table(LEDGER_SCHEMA, name, cols)


def table_checksum(table: pa.Table) -> str:
    """Order-independent content hash: sort by every column, hash the CSV rendering."""
    if table.num_rows == 0:
        return hashlib.sha256(b"").hexdigest()
    ordered = table.sort_by([(c, "ascending") for c in table.column_names])
    buf = io.BytesIO()
    pacsv.write_csv(ordered, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def load_batch(
    conn: Connection,
    source: str,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    tables: dict[str, pa.Table],
    extracted_at: dt.datetime,
) -> BatchResult:
    """Load one source's extract for one interval as one batch (or skip it if identical)."""
    raw_tables = all_raw_tables()
    digest = hashlib.sha256()
    for name in sorted(tables):
        if name not in raw_tables:
            raise ValueError(f"unknown raw table {name}")
        digest.update(name.encode())
        digest.update(table_checksum(tables[name]).encode())
    checksum = digest.hexdigest()
    batch_id = f"{source}_{interval_start:%Y%m%dT%H%M}_{checksum[:12]}"
    counts = {name: t.num_rows for name, t in sorted(tables.items())}

    ledger = qualified(RAW_SCHEMA, "batch_ledger")
    previous = conn.fetchall(
        f"SELECT batch_id, checksum FROM {ledger} WHERE source = ? AND interval_start = ? "
        "AND status = 'loaded'",
        [source, interval_start],
    )
    if len(previous) == 1 and previous[0][1] == checksum:
        return BatchResult(source, previous[0][0], interval_start, interval_end, counts, checksum,
                           "skipped_identical")

    with conn.transaction():
        for old_batch, _ in previous:
            for name in raw_tables:
                conn.execute(f"DELETE FROM {qualified(RAW_SCHEMA, name)} WHERE _batch_id = ?", [old_batch])
            conn.execute(f"DELETE FROM {ledger} WHERE batch_id = ?", [old_batch])
        for name, table in sorted(tables.items()):
            n = table.num_rows
            stamped = (
                table.append_column("_batch_id", pa.array([batch_id] * n, pa.string()))
                .append_column("_extracted_at", pa.array([extracted_at] * n, pa.timestamp("us")))
                .append_column("_source", pa.array([source] * n, pa.string()))
            )
            conn.insert_arrow(RAW_SCHEMA, name, stamped)
        conn.execute(
            f"INSERT INTO {ledger} (batch_id, source, interval_start, interval_end, row_count, "
            "checksum, status, loaded_at) VALUES (?, ?, ?, ?, ?, ?, 'loaded', ?)",
            [batch_id, source, interval_start, interval_end, sum(counts.values()), checksum, extracted_at],
        )
    return BatchResult(source, batch_id, interval_start, interval_end, counts, checksum,
                       "replaced" if previous else "loaded")
