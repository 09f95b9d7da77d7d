"""Loading extracted batches into `raw.*`: append-only, batch-stamped, replace-or-skip per interval.

One batch per source and data interval. A load streams the source's chunks (bounded memory:
one chunk at a time) into the raw tables inside ONE warehouse transaction:

1. the interval's previous batch (if any) is deleted — still invisible to readers;
2. each chunk is cast to the raw contract, checked row by row, hashed (an order-independent
   Σ of row hashes) and bulk-appended: valid rows to the raw table, contract violations to
   `raw.quarantine` with a reason code (Arrow into DuckDB, COPY into PostgreSQL);
3. duplicate natural keys inside the batch are found in the warehouse; extra copies move to
   quarantine (the first copy stays);
4. if the checksum equals the previous batch's, the transaction is rolled back
   (`skipped_identical`: the warehouse is untouched); if the quarantined share exceeds
   `max_quarantine_share`, it is rolled back and the load fails naming the source and the
   dominant reason; otherwise the ledger row is written and the transaction commits.

A crash anywhere (a source dying between chunks, the process killed) rolls back: no partial
batch is ever visible, and the previous batch of the interval is still there.

Direct path: with a DuckDB warehouse and a file source (an extract whose tables offer
`direct_scan()`, see `ingest.sql_sources.SourceStream`), steps 2 and 4 run as set-based SQL in
the warehouse connection — the checksum first (identical → nothing written), then one
`INSERT … SELECT` for valid rows and one for quarantine — with the same check query, hashes and
stamps as the streaming path, so both give the same rows, ledger and `BatchResult`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa

from ingest.arrow_types import to_raw_table
from ingest.chunks import QUARANTINE_ARROW, ChunkChecker, Chunks, iter_chunks, lit, q
from ingest.contracts import contract
from ingest.raw_schema import BATCH_LEDGER, LEDGER_TABLES, QUARANTINE, RAW_TABLES, all_raw_tables
from meterline.errors import SourceError, StageError
from meterline.warehouse import Connection, qualified

RAW_SCHEMA = "raw"
LEDGER_SCHEMA = "ledger"
DEFAULT_CHUNK_ROWS = 200_000


class QuarantineLimitError(StageError):
    """Too large a share of a batch broke the contract; nothing of the batch was loaded."""


@dataclass(frozen=True)
class BatchResult:
    source: str
    batch_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    row_counts: dict[str, int]          # rows written to each raw table
    checksum: str
    action: str  # loaded | replaced | skipped_identical
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> rows

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())


class _Identical(Exception):
    """Raised inside the load transaction to roll back a batch identical to the loaded one."""


def ensure_raw(conn: Connection, ledger: bool = True) -> None:
    """Create the raw schema and tables (and, with `ledger`, meterline's ledger tables) if they
    are not there yet. The ingest stage passes ledger=False: it writes raw only, and with a login
    per stage (deploy/postgres-roles.sql) it may not create the ledger's tables."""
    conn.ensure_schema(RAW_SCHEMA)
    for name, cols in all_raw_tables().items():
        conn.ensure_table(RAW_SCHEMA, name, cols)
    conn.ensure_table(RAW_SCHEMA, "quarantine", QUARANTINE)
    conn.ensure_table(RAW_SCHEMA, "batch_ledger", BATCH_LEDGER)
    if ledger:
        conn.ensure_schema(LEDGER_SCHEMA)
        for name, cols in LEDGER_TABLES.items():
            conn.ensure_table(LEDGER_SCHEMA, name, cols)


def make_batch_id(source: str, interval_start: dt.datetime, extracted_at: dt.datetime,
                  replaces: list[str]) -> str:
    """Deterministic from the source, interval, extraction stamp and the batch it replaces.

    The id cannot hold the content checksum: rows are streamed into raw before the checksum is
    known. It never repeats the id of the batch it replaces.
    """
    seed = f"{source}|{interval_start.isoformat()}|{extracted_at.isoformat()}|{','.join(replaces)}"
    tag = hashlib.sha256(seed.encode())
    return f"{source}_{interval_start:%Y%m%dT%H%M}_{tag.hexdigest()[:12]}"


def _stamp(table: pa.Table, batch_id: str, extracted_at: dt.datetime, source: str) -> pa.Table:
    n = table.num_rows
    return (
        table.append_column("_batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), n))
        .append_column("_extracted_at", pa.repeat(pa.scalar(extracted_at, pa.timestamp("us")), n))
        .append_column("_source", pa.repeat(pa.scalar(source, pa.string()), n))
    )


def load_batch(
    conn: Connection,
    source: str,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    tables: Mapping[str, Chunks],
    extracted_at: dt.datetime,
    *,
    max_quarantine_share: Decimal | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchResult:
    """Load one source's extract for one interval as one batch (or skip it if identical).

    `tables` maps raw table names to Arrow tables or iterables of record batches (read lazily,
    one chunk at a time). A source error raised while iterating rolls the whole batch back.
    """
    for name in tables:
        if name not in RAW_TABLES:
            raise ValueError(f"unknown raw table {name}")
    scans = _direct_scans(conn, tables)
    if scans is not None:
        import duckdb

        try:
            return _load(conn, source, interval_start, interval_end, tables, extracted_at,
                         max_quarantine_share, chunk_rows, scans)
        except duckdb.Error:
            # rolled back; the streaming path loads the batch or names the failure (an
            # unreadable file, a value that does not fit the contract) as it always has
            tables = {name: data.fresh() for name, data in tables.items()}  # type: ignore[union-attr]
    return _load(conn, source, interval_start, interval_end, tables, extracted_at,
                 max_quarantine_share, chunk_rows, None)


def _direct_scans(conn: Connection, tables: Mapping[str, Chunks]) -> dict[str, tuple[str, list]] | None:
    """The DuckDB scans of file sources, when the warehouse is DuckDB and every table has one."""
    if conn.kind != "duckdb" or not tables:
        return None
    scans = {}
    for name, data in tables.items():
        direct = getattr(data, "direct_scan", None)
        scan = direct() if direct is not None and hasattr(data, "fresh") else None
        if scan is None:
            return None
        scans[name] = scan
    return scans


@dataclass
class _Scan:
    """One raw table of a direct load: the check query over the source scan, and its totals."""

    sql: str                # SELECT <typed columns, __hash, __reason, …> FROM (<scan>) AS chunk
    params: list
    rows: int = 0
    good: int = 0
    hash_sum: int = 0


def _prepare_direct(conn: Connection, checker: ChunkChecker, name: str,
                    scan: tuple[str, list]) -> _Scan:
    """Type, check and hash the whole scan inside the warehouse: one pass, no rows leave DuckDB."""
    sql, params = scan
    schema = conn.raw.sql(f"SELECT * FROM ({sql}) LIMIT 0", params=list(params) or None).to_arrow_table().schema
    s = _Scan(checker.query(name, schema, f"({sql}) AS chunk"), list(params))
    row = conn.fetchone(
        "SELECT count(*), count(*) FILTER (WHERE __reason IS NULL), sum(__hash) "
        f"FROM ({s.sql}) AS checked", s.params)
    assert row is not None
    s.rows, s.good, s.hash_sum = int(row[0]), int(row[1]), int(row[2] or 0) % 2**64
    return s


def _append_direct(conn: Connection, name: str, s: _Scan, batch_id: str,
                   extracted_at: dt.datetime, source: str) -> dict[str, int]:
    """Set-based insert of the checked scan: valid rows to raw, violations to quarantine."""
    stamps = f"{lit(batch_id)}, make_timestamp({_micros(extracted_at)}), {lit(source)}"
    cols = ", ".join(q(c) for c, _ in RAW_TABLES[name])
    batch_cols = "_batch_id, _extracted_at, _source"
    good = conn.raw.execute(
        f"INSERT INTO {qualified(RAW_SCHEMA, name)} ({cols}, {batch_cols}) "
        f"SELECT {cols}, {stamps} FROM ({s.sql}) AS checked WHERE __reason IS NULL",
        s.params).fetchone()[0]
    bad = 0
    if s.rows > s.good:
        bad = conn.raw.execute(
            f"INSERT INTO {qualified(RAW_SCHEMA, 'quarantine')} (raw_table, reason, account_id, "
            f"category, day, row_json, {batch_cols}) SELECT {lit(name)}, __reason, __account_id, "
            f"__category, __day, __row_json, {stamps} FROM ({s.sql}) AS checked "
            "WHERE __reason IS NOT NULL", s.params).fetchone()[0]
    if (good, bad) != (s.good, s.rows - s.good):
        raise SourceError(f"{source} source: the files changed while {name} was loading; "
                          "nothing of this batch was loaded")
    return {r[0]: int(r[1]) for r in conn.fetchall(
        f"SELECT reason, count(*) FROM {qualified(RAW_SCHEMA, 'quarantine')} "
        "WHERE _batch_id = ? AND raw_table = ? GROUP BY reason", [batch_id, name])}


def _micros(value: dt.datetime) -> int:
    """Microseconds since the epoch, as Arrow stores `_extracted_at` (aware values in UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return (value - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def _checksum(totals: Mapping[str, tuple[int, int]]) -> str:
    """sha256 over `table:rows:Σhash;` for each table in name order (both paths agree)."""
    digest = hashlib.sha256()
    for name in sorted(totals):
        rows, hsum = totals[name]
        digest.update(f"{name}:{rows}:{hsum:016x};".encode())
    return digest.hexdigest()


def _load(
    conn: Connection,
    source: str,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    tables: Mapping[str, Chunks],
    extracted_at: dt.datetime,
    max_quarantine_share: Decimal | None,
    chunk_rows: int,
    scans: Mapping[str, tuple[str, list]] | None,
) -> BatchResult:
    ledger = qualified(RAW_SCHEMA, "batch_ledger")
    quarantine = qualified(RAW_SCHEMA, "quarantine")
    previous = conn.fetchall(
        f"SELECT batch_id, checksum FROM {ledger} WHERE source = ? AND interval_start = ? "
        "AND status = 'loaded'",
        [source, interval_start],
    )
    batch_id = make_batch_id(source, interval_start, extracted_at, [p[0] for p in previous])
    counts: dict[str, int] = {}
    reasons: dict[tuple[str, str], int] = {}
    totals: dict[str, tuple[int, int]] = {}
    checker = ChunkChecker()
    try:
        with conn.transaction():
            direct: dict[str, _Scan] = {}
            if scans is not None:
                # checksum first: a rerun of identical files costs one scan and writes nothing
                for name in sorted(scans):
                    direct[name] = _prepare_direct(conn, checker, name, scans[name])
                    totals[name] = (direct[name].rows, direct[name].hash_sum)
                    counts[name] = direct[name].good
                checksum = _checksum(totals)
                if len(previous) == 1 and previous[0][1] == checksum:
                    raise _Identical
            for old_batch, _ in previous:
                for name in [*RAW_TABLES, "quarantine"]:
                    conn.execute(f"DELETE FROM {qualified(RAW_SCHEMA, name)} WHERE _batch_id = ?",
                                 [old_batch])
                conn.execute(f"DELETE FROM {ledger} WHERE batch_id = ?", [old_batch])
            for name in sorted(tables):
                if name in direct:
                    for r, n in _append_direct(conn, name, direct[name], batch_id, extracted_at,
                                               source).items():
                        reasons[(name, r)] = n
                    continue
                rows, hsum = 0, 0
                good_rows = 0
                for chunk in iter_chunks(tables[name], chunk_rows):
                    checked = checker.check(name, chunk)
                    rows += checked.rows
                    hsum = (hsum + checked.hash_sum) % 2**64
                    good_rows += conn.insert_arrow(
                        RAW_SCHEMA, name, _stamp(checked.good, batch_id, extracted_at, source))
                    if checked.bad.num_rows:
                        conn.insert_arrow(RAW_SCHEMA, "quarantine",
                                          _stamp(checked.bad, batch_id, extracted_at, source))
                        for r in checked.bad.column("reason").to_pylist():
                            reasons[(name, r)] = reasons.get((name, r), 0) + 1
                totals[name] = (rows, hsum)
                counts[name] = good_rows
            checksum = _checksum(totals)
            if len(previous) == 1 and previous[0][1] == checksum:
                raise _Identical
            total = sum(rows for rows, _ in totals.values())
            for name in sorted(tables):
                moved = _quarantine_duplicates(conn, checker, name, batch_id, extracted_at, source,
                                               interval_start, total, reasons, max_quarantine_share)
                if moved:
                    counts[name] -= moved
                    reasons[(name, "duplicate_key")] = reasons.get((name, "duplicate_key"), 0) + moved
            _check_share(source, interval_start, total, reasons, max_quarantine_share)
            conn.execute(
                f"INSERT INTO {ledger} (batch_id, source, interval_start, interval_end, row_count, "
                "checksum, status, loaded_at) VALUES (?, ?, ?, ?, ?, ?, 'loaded', ?)",
                [batch_id, source, interval_start, interval_end, sum(counts.values()), checksum,
                 extracted_at],
            )
    except _Identical:
        old_id = previous[0][0]
        kept = {r[0]: int(r[1]) for r in conn.fetchall(
            f"SELECT reason, count(*) FROM {quarantine} WHERE _batch_id = ? GROUP BY reason",
            [old_id])}
        return BatchResult(source, old_id, interval_start, interval_end, counts, checksum,
                           "skipped_identical", kept)
    finally:
        checker.close()
    by_reason: dict[str, int] = {}
    for (_, r), n in reasons.items():
        by_reason[r] = by_reason.get(r, 0) + n
    return BatchResult(source, batch_id, interval_start, interval_end, counts, checksum,
                       "replaced" if previous else "loaded", dict(sorted(by_reason.items())))


def _check_share(source: str, interval_start: dt.datetime, total: int,
                 reasons: dict[tuple[str, str], int], max_share: Decimal | None) -> None:
    bad = sum(reasons.values())
    if max_share is None or not total or bad <= max_share * total:
        return
    (table, reason), n = max(reasons.items(), key=lambda kv: (kv[1], kv[0]))
    raise QuarantineLimitError(
        f"{source} source: {bad} of {total} rows of the {interval_start:%Y-%m-%d} batch break the "
        f"contract (over the quarantine_max_share limit {max_share}), mostly {reason!r} "
        f"({n} rows of {table}); nothing of this batch was loaded"
    )


def _quarantine_duplicates(
    conn: Connection, checker: ChunkChecker, name: str, batch_id: str,
    extracted_at: dt.datetime, source: str, interval_start: dt.datetime, total: int,
    reasons: dict[tuple[str, str], int], max_share: Decimal | None,
) -> int:
    """Move extra copies of a natural key inside the batch to quarantine; return how many."""
    key = contract(name).natural_key
    if not key:
        return 0
    table = qualified(RAW_SCHEMA, name)
    keys = ", ".join(q(k) for k in key)
    where = "_batch_id = ?"
    params: list = [batch_id]
    if conn.kind == "duckdb":
        # grouping one 64-bit key hash is far cheaper than grouping the key columns; only
        # rows whose key hash repeats are grouped exactly (same answer, less work)
        where += (f" AND hash({keys}) IN (SELECT hash({keys}) FROM {table} WHERE _batch_id = ? "
                  f"GROUP BY hash({keys}) HAVING count(*) > 1)")
        params.append(batch_id)
    groups = conn.fetchall(
        f"SELECT {keys}, count(*) FROM {table} WHERE {where} GROUP BY {keys} HAVING count(*) > 1",
        params,
    )
    if not groups:
        return 0
    extra = sum(int(g[-1]) - 1 for g in groups)
    # fail before any per-row work when the share is already past the limit
    _check_share(source, interval_start, total,
                 {**reasons, (name, "duplicate_key"): reasons.get((name, "duplicate_key"), 0) + extra},
                 max_share)
    cols = [c for c, _ in RAW_TABLES[name]]
    select = ", ".join(q(c) for c in cols)
    cond = " AND ".join(f"{q(k)} IS NOT DISTINCT FROM ?" for k in key)
    moved = 0
    c = contract(name)
    for g in groups:
        params = [batch_id, *g[:-1]]
        rows = [dict(zip(cols, r, strict=True)) for r in conn.fetchall(
            f"SELECT {select} FROM {table} WHERE _batch_id = ? AND {cond}", params)]
        rows.sort(key=lambda r: tuple((v is None, str(v)) for v in r.values()))
        keep, extras = rows[0], rows[1:]
        conn.execute(f"DELETE FROM {table} WHERE _batch_id = ? AND {cond}", params)
        conn.insert_arrow(RAW_SCHEMA, name, _stamp(to_raw_table(name, [keep]), batch_id,
                                                   extracted_at, source))
        extra_table = to_raw_table(name, extras)
        day_col = c.day_column
        bad = pa.table({
            "raw_table": [name] * len(extras),
            "reason": ["duplicate_key"] * len(extras),
            "account_id": [r.get(c.account) if c.account else None for r in extras],
            "category": [r.get(c.category) if c.category else None for r in extras],
            "day": [_as_date(r[day_col]) if day_col else None for r in extras],
            "row_json": checker.row_json(extra_table),
        }, schema=QUARANTINE_ARROW)
        conn.insert_arrow(RAW_SCHEMA, "quarantine", _stamp(bad, batch_id, extracted_at, source))
        moved += len(extras)
    return moved


def _as_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None
