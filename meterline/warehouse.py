"""Warehouse connections: DuckDB (embedded, default) or PostgreSQL, behind one small interface.

Python moves data; it does not hold business rules. This module gives the stages what they
need to move data safely: parameterised statements, transactions, bulk loads (Arrow into
DuckDB, COPY into PostgreSQL) and identifier quoting.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from meterline.config import WarehouseTarget
from meterline.errors import WarehouseError


def quote_ident(name: str) -> str:
    """Quote an identifier for both DuckDB and PostgreSQL."""
    if not name or "\x00" in name:
        raise ValueError(f"bad identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


class Connection:
    """A warehouse connection with `?` placeholders on both engines."""

    def __init__(self, target: WarehouseTarget, raw: Any):
        self.target = target
        self.kind = target.kind
        self.raw = raw
        self._in_tx = False

    # -- statements ---------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.kind == "postgres" else sql

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if self.kind == "duckdb":
            self.raw.execute(sql, params or [])
        else:
            with self.raw.cursor() as cur:
                cur.execute(self._sql(sql), params or None)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        if self.kind == "duckdb":
            return self.raw.execute(sql, params or []).fetchall()
        with self.raw.cursor() as cur:
            cur.execute(self._sql(sql), params or None)
            return cur.fetchall() if cur.description else []

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def fetch_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        if self.kind == "duckdb":
            cur = self.raw.execute(sql, params or [])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        with self.raw.cursor() as cur:
            cur.execute(self._sql(sql), params or None)
            cols = [d.name for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # -- transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """All or nothing: a crash inside leaves nothing of it visible."""
        if self._in_tx:
            yield self
            return
        self._in_tx = True
        try:
            if self.kind == "duckdb":
                self.raw.execute("BEGIN TRANSACTION")
                try:
                    yield self
                except BaseException:
                    self.raw.execute("ROLLBACK")
                    raise
                self.raw.execute("COMMIT")
            else:
                with self.raw.transaction():
                    yield self
        finally:
            self._in_tx = False

    # -- schema -------------------------------------------------------------------------
    def ensure_schema(self, schema: str) -> None:
        # PostgreSQL checks CREATE on the whole database before IF NOT EXISTS: a stage role
        # granted only its schemas (deploy/postgres-roles.sql) must not have to issue it
        if self.kind == "postgres" and self.fetchone(
                "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ?", [schema]):
            return
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")

    def columns_of(self, schema: str, table: str) -> set[str]:
        """The table's column names (empty when there is no such table). On PostgreSQL from the
        catalog, which shows every table, not only those the login may read."""
        if self.kind == "postgres":
            sql = ("SELECT a.attname FROM pg_catalog.pg_attribute a "
                   "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE n.nspname = ? AND c.relname = ? AND a.attnum > 0 AND NOT a.attisdropped")
        else:
            sql = "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?"
        return {r[0] for r in self.fetchall(sql, [schema, table])}

    def ensure_table(self, schema: str, table: str, columns: list[tuple[str, str]]) -> None:
        """Create the table, or add the columns a newer meterline expects to an existing one
        (NULL for the rows already there; columns are only ever added, never changed). A table
        that is there with every column gets no statement at all: a stage login that may use
        the table but not create or alter it (deploy/postgres-roles.sql) passes."""
        have = self.columns_of(schema, table)
        if not have:
            cols = ", ".join(f"{quote_ident(n)} {t}" for n, t in columns)
            self.execute(f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} ({cols})")
            have = self.columns_of(schema, table)
        for name, type_ in columns:
            if name not in have:
                self.execute(f"ALTER TABLE {qualified(schema, table)} ADD COLUMN {quote_ident(name)} {type_}")

    def tables(self, schemas: Sequence[str]) -> list[tuple[str, str]]:
        marks = ", ".join("?" for _ in schemas)
        rows = self.fetchall(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema IN ({marks}) ORDER BY 1, 2",
            list(schemas),
        )
        return [(r[0], r[1]) for r in rows]

    # -- bulk load ----------------------------------------------------------------------
    def insert_arrow(
        self, schema: str, table: str, data: pa.Table, chunk_rows: int = 200_000
    ) -> int:
        """Bulk-append an Arrow table: Arrow scan on DuckDB, COPY on PostgreSQL."""
        if data.num_rows == 0:
            return 0
        cols = ", ".join(quote_ident(c) for c in data.column_names)
        target = qualified(schema, table)
        if self.kind == "duckdb":
            name = "_meterline_incoming"
            for batch in data.to_batches(max_chunksize=chunk_rows):
                self.raw.register(name, pa.Table.from_batches([batch], schema=data.schema))
                try:
                    self.raw.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {name}")
                finally:
                    self.raw.unregister(name)
        else:
            with self.raw.cursor() as cur:
                types = _pg_column_types(cur, target)
                encoders = _binary_encoders(data, types)
                if encoders is None:
                    _copy_csv(cur, target, cols, data, chunk_rows)
                else:
                    _copy_binary(cur, target, cols, data, encoders, chunk_rows)
        return data.num_rows

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


# -- PostgreSQL COPY -------------------------------------------------------------------------
# Binary COPY sends every field in the target column's own wire format, so the server parses
# no text (timestamps and numerics are most of what text COPY costs it). The encoders below are
# chosen per column from the target's catalog type, and only for Arrow/PostgreSQL type pairs
# whose values mean exactly what the CSV text of the same Arrow values would mean; for anything
# else the whole call uses the CSV path, unchanged, so PostgreSQL still parses (or rejects) the
# text as before. Values are checked up front (ranges, exact microseconds, decimals that fit
# 64 bits) because the format of one COPY cannot change half-way.

_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension
_PGCOPY_TRAILER = b"\xff\xff"
_BINARY_BLOCK_ROWS = 8_192  # rows encoded per write: the server parses one while we encode
_MAX_INT32_OFFSET = 2**31 - 1  # a block larger than this is assembled with 64-bit offsets
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00 in microseconds since 1970-01-01
_PG_EPOCH_DAYS = 10_957
# Arrow values outside these bounds go the CSV way (well inside PostgreSQL's own ranges).
_TS_US_RANGE = (-210_000_000_000_000_000, 9_000_000_000_000_000_000)
_DATE_DAYS_RANGE = (-2_440_000, 2_000_000_000)
_BOOL, _INT8, _INT2, _INT4, _TEXT, _VARCHAR = 16, 20, 21, 23, 25, 1043
_DATE, _TIMESTAMP, _TIMESTAMPTZ, _NUMERIC = 1082, 1114, 1184, 1700
_INT_RANGE = {
    _INT2: (-(2**15), 2**15 - 1),
    _INT4: (-(2**31), 2**31 - 1),
    _INT8: (-(2**63), 2**63 - 1),
    _NUMERIC: (-(2**63) + 1, 2**63 - 1),
}
_INT_WIDTH = {_INT2: ">i2", _INT4: ">i4", _INT8: ">i8"}
_UTC_NAMES = {"UTC", "Etc/UTC", "+00:00"}

# An encoder turns one Arrow array into (field lengths, payload): lengths is int32 per row with
# -1 for NULL; payload is either a uint8 matrix with one fixed-width row per value (its NULL
# rows are ignored) or a binary Arrow array without nulls (NULL rows empty).
_Encoder = Callable[[pa.Array], tuple[np.ndarray, "np.ndarray | pa.Array"]]


def _pg_column_types(cur: Any, target: str) -> dict[str, int]:
    cur.execute(
        "SELECT attname, atttypid::int FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [target],
    )
    return {name: oid for name, oid in cur.fetchall()}


def _copy_csv(cur: Any, target: str, cols: str, data: pa.Table, chunk_rows: int) -> None:
    with cur.copy(f"COPY {target} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
        for i, batch in enumerate(data.to_batches(max_chunksize=chunk_rows)):
            buf = io.BytesIO()
            # HEADER true skips the first line only: later chunks carry no header
            options = pacsv.WriteOptions(include_header=i == 0)
            pacsv.write_csv(pa.Table.from_batches([batch], schema=data.schema), buf, options)
            copy.write(buf.getvalue())


def _copy_binary(
    cur: Any, target: str, cols: str, data: pa.Table, encoders: list[_Encoder], chunk_rows: int
) -> None:
    with cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(_PGCOPY_HEADER)
        for batch in data.to_batches(max_chunksize=min(chunk_rows, _BINARY_BLOCK_ROWS)):
            if batch.num_rows:
                copy.write(_binary_rows(batch, encoders))
        copy.write(_PGCOPY_TRAILER)


def _valid(arr: pa.Array) -> np.ndarray | None:
    return None if arr.null_count == 0 else arr.is_valid().to_numpy(zero_copy_only=False)


def _lengths(arr: pa.Array, width: int) -> np.ndarray:
    valid = _valid(arr)
    if valid is None:
        return np.full(len(arr), width, np.int32)
    return np.where(valid, np.int32(width), np.int32(-1))


def _be_bytes(values: np.ndarray, dtype: str) -> np.ndarray:
    """Values (one row or one 1-D row each) as a (rows, bytes) uint8 matrix, network order."""
    return np.ascontiguousarray(values, dtype=dtype).view(np.uint8).reshape(len(values), -1)


def _min_max(col: pa.ChunkedArray) -> tuple[Any, Any]:
    mm = pc.min_max(col)
    return mm["min"].as_py(), mm["max"].as_py()


def _int_values(arr: pa.Array) -> np.ndarray:
    return arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def _decimal_unscaled(arr: pa.Array) -> tuple[np.ndarray, bool]:
    """A decimal128 array's unscaled values as int64, and whether every valid one fits."""
    if len(arr) == 0:
        return np.zeros(0, np.int64), True
    words = np.frombuffer(arr.buffers()[1], np.int64, count=2 * (arr.offset + len(arr)))
    words = words.reshape(-1, 2)[arr.offset :]
    low, high = words[:, 0], words[:, 1]
    fits = (high == (low >> 63)) & (low != np.iinfo(np.int64).min)
    valid = _valid(arr)
    if valid is not None:
        fits |= ~valid
    return np.where(fits if valid is None else fits & valid, low, 0), bool(fits.all())


def _numeric_encoder(scale: int, int_groups: int) -> _Encoder:
    """NUMERIC's binary form of int64 unscaled values with `scale` decimals: base-10000 digits
    (`int_groups` before the point, ceil(scale / 4) after), weight, sign and display scale."""
    frac_groups = (scale + 3) // 4
    pad = 4 * frac_groups - scale
    ndigits = int_groups + frac_groups

    def encode(unscaled: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(unscaled)
        words = np.empty((n, 4 + ndigits), np.int64)
        words[:, 0] = ndigits
        words[:, 1] = int_groups - 1  # weight of the first digit
        words[:, 2] = np.where(unscaled < 0, 0x4000, 0)
        words[:, 3] = scale
        v = np.abs(unscaled)
        ip, fp = np.divmod(v, np.int64(10**scale))
        for k in range(int_groups):
            words[:, 4 + k] = ip // np.int64(10_000 ** (int_groups - 1 - k)) % 10_000
        for k in range(frac_groups):
            e = 4 * (frac_groups - 1 - k) - pad
            col = 4 + int_groups + k
            if e >= 0:
                words[:, col] = fp // np.int64(10**e) % 10_000
            else:
                words[:, col] = fp % np.int64(10 ** (4 - pad)) * np.int64(10**pad)
        sizes = np.where(lengths < 0, -1, 2 * (4 + ndigits)).astype(np.int32)
        return sizes, _be_bytes(words, ">i2")

    return encode


def _int_groups(max_abs_integer_part: int) -> int:
    return max(1, -(-len(str(max_abs_integer_part)) // 4))


def _binary_encoder(col: pa.ChunkedArray, oid: int) -> _Encoder | None:
    t = col.type
    if pa.types.is_null(t):
        return lambda arr: (np.full(len(arr), -1, np.int32), np.empty((len(arr), 0), np.uint8))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if oid not in (_TEXT, _VARCHAR):
            return None

        def encode_text(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
            valid = _valid(arr)
            sizes = pc.binary_length(arr).fill_null(-1).to_numpy().astype(np.int32)
            return sizes, arr if valid is None else arr.fill_null("")

        return encode_text
    if pa.types.is_boolean(t):
        if oid != _BOOL:
            return None
        return lambda arr: (
            _lengths(arr, 1),
            arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8).reshape(-1, 1),
        )
    if pa.types.is_integer(t):
        if oid not in _INT_RANGE:
            return None
        lo, hi = _min_max(col)
        if lo is not None and (lo < _INT_RANGE[oid][0] or hi > _INT_RANGE[oid][1]):
            return None
        if oid == _NUMERIC:
            numeric = _numeric_encoder(0, _int_groups(max(abs(lo or 0), abs(hi or 0))))
            return lambda arr: numeric(_int_values(arr), _lengths(arr, 0))
        width = _INT_WIDTH[oid]
        return lambda arr: (_lengths(arr, int(width[-1])), _be_bytes(_int_values(arr), width))
    if pa.types.is_decimal128(t):
        if oid != _NUMERIC or not 0 <= t.scale <= 18:
            return None
        biggest = 0
        for chunk in col.chunks:
            unscaled, ok = _decimal_unscaled(chunk)
            if not ok:
                return None
            if len(unscaled):
                biggest = max(biggest, int(np.abs(unscaled).max()) // 10**t.scale)
        numeric = _numeric_encoder(t.scale, _int_groups(biggest))
        return lambda arr: numeric(_decimal_unscaled(arr)[0], _lengths(arr, 0))
    if pa.types.is_timestamp(t):
        # The CSV text of naive time is read in the session's zone by timestamptz, and zoned
        # time is written in its own zone, whose offset timestamp ignores: both stay text.
        if oid == _TIMESTAMPTZ and t.tz is None:
            return None
        if oid == _TIMESTAMP and t.tz is not None and t.tz not in _UTC_NAMES:
            return None
        if oid not in (_TIMESTAMP, _TIMESTAMPTZ):
            return None
        per_us = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}[t.unit]
        raw = col.cast(pa.int64())
        # PostgreSQL rounds text nanoseconds to microseconds: only whole microseconds go binary
        if t.unit == "ns" and any((_int_values(c) % 1000 != 0).any() for c in raw.chunks):
            return None
        lo, hi = _min_max(raw)
        if lo is not None:
            lo_us, hi_us = (
                (lo // 1000, hi // 1000) if t.unit == "ns" else (lo * per_us, hi * per_us)
            )
            if lo_us < _TS_US_RANGE[0] or hi_us > _TS_US_RANGE[1]:
                return None

        def encode_ts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
            us = _int_values(arr.cast(pa.int64()))
            us = us // 1000 if t.unit == "ns" else us * per_us
            return _lengths(arr, 8), _be_bytes(us - _PG_EPOCH_US, ">i8")

        return encode_ts
    if pa.types.is_date32(t):
        if oid != _DATE:
            return None
        lo, hi = _min_max(col.cast(pa.int32()))
        if lo is not None and (lo < _DATE_DAYS_RANGE[0] or hi > _DATE_DAYS_RANGE[1]):
            return None
        return lambda arr: (
            _lengths(arr, 4),
            _be_bytes(_int_values(arr.cast(pa.int32())) - _PG_EPOCH_DAYS, ">i4"),
        )
    return None


def _binary_encoders(data: pa.Table, types: dict[str, int]) -> list[_Encoder] | None:
    """One encoder per column, or None when any column has to go as CSV text."""
    encoders = []
    for name in data.column_names:
        oid = types.get(name)
        encoder = None if oid is None else _binary_encoder(data.column(name), oid)
        if encoder is None:
            return None
        encoders.append(encoder)
    return encoders


def _binary_rows(batch: pa.RecordBatch, encoders: list[_Encoder]) -> memoryview:
    """The binary COPY tuples of a batch: field count, then per field length and bytes."""
    n = batch.num_rows
    fields = [encoder(arr) for encoder, arr in zip(encoders, batch.columns, strict=True)]
    size = 2 * n + sum(4 * n + int(np.maximum(lengths, 0).sum()) for lengths, _ in fields)
    if size <= _MAX_INT32_OFFSET:
        binary, offset_type = pa.binary(), np.int32
    else:
        binary, offset_type = pa.large_binary(), np.int64
    parts: list[np.ndarray | pa.Array] = [_be_bytes(np.full(n, batch.num_columns), ">i2")]
    for lengths, payload in fields:
        parts.append(_be_bytes(lengths, ">i4"))
        if isinstance(payload, np.ndarray):
            if payload.shape[1] == 0:
                continue
            valid = lengths >= 0
            if not valid.all():  # NULLs carry no bytes: a variable-width payload
                offsets = np.zeros(n + 1, offset_type)
                np.cumsum(np.where(valid, payload.shape[1], 0), out=offsets[1:])
                values = np.ascontiguousarray(payload[valid])
                payload = pa.Array.from_buffers(
                    binary, n, [None, pa.py_buffer(offsets), pa.py_buffer(values)]
                )
        else:
            payload = payload.cast(binary)  # text: its UTF-8 bytes as they are
        parts.append(payload)
    # consecutive fixed-width parts become one matrix; the rest is joined row by row by Arrow
    pieces: list[np.ndarray | pa.Array] = []
    run: list[np.ndarray] = []
    for part in [*parts, None]:
        if isinstance(part, np.ndarray):
            run.append(part)
            continue
        if run:
            pieces.append(np.concatenate(run, axis=1) if len(run) > 1 else run[0])
            run = []
        if part is not None:
            pieces.append(part)
    if len(pieces) == 1:
        return memoryview(np.ascontiguousarray(pieces[0])).cast("B")
    arrays = []
    for piece in pieces:
        if isinstance(piece, np.ndarray):
            width = piece.shape[1]
            offsets = np.arange(0, (n + 1) * width, width, dtype=offset_type)
            buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(piece))]
            piece = pa.Array.from_buffers(binary, n, buffers)
        arrays.append(piece)
    rows = pc.binary_join_element_wise(*arrays, pa.scalar(b"", binary))
    offsets = np.frombuffer(rows.buffers()[1], offset_type, count=rows.offset + n + 1)
    return memoryview(rows.buffers()[2])[offsets[rows.offset] : offsets[-1]]


def limit_duckdb_files(raw: Any, allowed: Sequence[str | Path]) -> None:
    """Limit the files a DuckDB connection can reach to the `allowed` directories, its own
    database aside: no read_csv / read_parquet / COPY / ATTACH anywhere else, no extension
    downloads. DuckDB refuses to lift the limit while the database is open. The limit is the
    database instance's, which connections to the same file in one process share: when it is
    already in place, it stays as it is."""
    if not raw.execute("SELECT current_setting('enable_external_access')").fetchall()[0][0]:
        return
    dirs = sorted({str(Path(p).resolve()).rstrip(os.sep) + os.sep for p in allowed})
    literals = ", ".join("'" + d.replace("'", "''") + "'" for d in dirs)
    raw.execute(f"SET allowed_directories = [{literals}]")
    raw.execute("SET enable_external_access = false")


def apply_duckdb_settings(raw: Any, settings: Sequence[tuple[str, str]]) -> None:
    """`SET` the warehouse's DuckDB settings ([warehouse] duckdb_memory_limit, temp_directory)
    on a connection, before limit_duckdb_files: both are the database instance's, and DuckDB
    refuses to change temp_directory once external access is off. When another connection in
    this process has already limited the instance, it set them: temp_directory stays."""
    if not settings:
        return
    limited = not raw.execute("SELECT current_setting('enable_external_access')").fetchall()[0][0]
    for name, value in settings:
        if name not in ("memory_limit", "temp_directory"):
            raise ValueError(f"unknown DuckDB setting {name!r}")
        if limited and name == "temp_directory":
            continue
        raw.execute(f"SET {name} = '" + value.replace("'", "''") + "'")


def open_connection(
    target: WarehouseTarget, read_only: bool = False, what: str = "warehouse"
) -> Connection:
    if target.kind == "duckdb":
        import duckdb

        assert target.path is not None
        if read_only and not target.path.exists():
            raise WarehouseError(f"{what}: DuckDB file {target.path} does not exist")
        try:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            raw = duckdb.connect(str(target.path), read_only=read_only)
            raw.execute("SET TimeZone = 'UTC'")  # zoned source times (direct file loads) as UTC
            apply_duckdb_settings(raw, target.duckdb_settings)
            if target.file_dirs:  # a target from the configuration (Config.warehouse)
                limit_duckdb_files(raw, target.file_dirs)
        except duckdb.IOException as exc:
            msg = str(exc).splitlines()[0]
            if "lock" in msg.lower():
                raise WarehouseError(
                    f"{what}: {target.path} is in use by another process (DuckDB allows one writer)"
                ) from exc
            raise WarehouseError(f"{what}: cannot open {target.path}: {msg}") from exc
        except OSError as exc:
            raise WarehouseError(f"{what}: cannot open {target.path}: {exc.strerror}") from exc
        return Connection(target, raw)
    import psycopg

    try:
        raw = psycopg.connect(**target.libpq_kwargs(), autocommit=True)
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["unreachable"])[-1]
        raise WarehouseError(f"{what}: cannot reach {target.redacted()}: {first}") from exc
    return Connection(target, raw)


@contextlib.contextmanager
def connect(
    target: WarehouseTarget, read_only: bool = False, what: str = "warehouse"
) -> Iterator[Connection]:
    conn = open_connection(target, read_only=read_only, what=what)
    try:
        yield conn
    finally:
        conn.close()
