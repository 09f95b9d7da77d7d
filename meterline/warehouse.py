"""Warehouse connections: DuckDB (embedded, default) or PostgreSQL, behind one small interface.

Python moves data; it does not hold business rules. This module gives the stages what they
need to move data safely: parameterised statements, transactions, bulk loads (Arrow into
DuckDB, COPY into PostgreSQL) and identifier quoting.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
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
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")

    def ensure_table(self, schema: str, table: str, columns: list[tuple[str, str]]) -> None:
        cols = ", ".join(f"{quote_ident(n)} {t}" for n, t in columns)
        self.execute(f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} ({cols})")

    def tables(self, schemas: Sequence[str]) -> list[tuple[str, str]]:
        marks = ", ".join("?" for _ in schemas)
        rows = self.fetchall(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema IN ({marks}) ORDER BY 1, 2",
            list(schemas),
        )
        return [(r[0], r[1]) for r in rows]

    # -- bulk load ----------------------------------------------------------------------
    def insert_arrow(self, schema: str, table: str, data: pa.Table, chunk_rows: int = 200_000) -> int:
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
                with cur.copy(
                    f"COPY {target} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)"
                ) as copy:
                    for batch in data.to_batches(max_chunksize=chunk_rows):
                        buf = io.BytesIO()
                        pacsv.write_csv(pa.Table.from_batches([batch], schema=data.schema), buf)
                        copy.write(buf.getvalue())
        return data.num_rows

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


def open_connection(target: WarehouseTarget, read_only: bool = False, what: str = "warehouse") -> Connection:
    if target.kind == "duckdb":
        import duckdb

        assert target.path is not None
        if read_only and not target.path.exists():
            raise WarehouseError(f"{what}: DuckDB file {target.path} does not exist")
        try:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            raw = duckdb.connect(str(target.path), read_only=read_only)
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
def connect(target: WarehouseTarget, read_only: bool = False, what: str = "warehouse") -> Iterator[Connection]:
    conn = open_connection(target, read_only=read_only, what=what)
    try:
        yield conn
    finally:
        conn.close()
