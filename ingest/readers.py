"""Streaming readers for the SQL and file sources: every one yields Arrow record batches.

- `duckdb:///file` — the DuckDB file, read-only; `to_arrow_reader` streams the result.
- `postgresql://…` — psycopg, `COPY (query) TO STDOUT` as CSV parsed by Arrow's streaming
  CSV reader (every column as text; the contract casts happen in `ingest.chunks`).
- any other SQLAlchemy URL (`sqlite:///…`, `mysql+pymysql://…`, `postgresql+psycopg://…`) —
  `stream_results` + `yield_per`, one partition per chunk.
- Parquet / CSV files (a path or a glob) — DuckDB's `read_parquet` / `read_csv`, with the
  window filter pushed into the scan. CSV columns are read as text; unparsable timestamps are
  quarantined downstream, never dropped.

Queries are written with `?` placeholders and `{table}` for the source relation. A reader
never holds more than one chunk in memory. Every driver error becomes a `SourceError` naming
the source.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from meterline.config import Config, fixed_dir
from meterline.errors import MeterlineError, SourceError
from meterline.warehouse import limit_duckdb_files, quote_ident

FILE_FORMATS = ("parquet", "csv")

# Every source session runs in UTC (docs/sources.md: all times are UTC). A source's zoned times
# (TIMESTAMPTZ) are then compared with the night's UTC window and read out as UTC, whatever time
# zone the server, the database, the role or the host would give the session.
DUCKDB_UTC = "SET TimeZone = 'UTC'"
POSTGRES_UTC = "SET TIME ZONE 'UTC'"


def text_timestamp(expr: str) -> str:
    """Text as a UTC TIMESTAMP, NULL when it does not parse. An offset or zone in the text is
    applied (DuckDB's cast of text to TIMESTAMP ignores it); text without one is UTC, read in a
    UTC session (`DUCKDB_UTC`)."""
    return f"timezone('UTC', try_cast({expr} AS TIMESTAMPTZ))"


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


class Reader:
    """A source relation that can be queried and streamed. `relation` is the FROM target."""

    kind = ""
    source = ""
    relation = ""
    text_times = False  # time columns may arrive as text (window filters must tolerate it)

    def stream(self, sql: str, params: Sequence[Any], chunk_rows: int) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def fail(self, exc: BaseException) -> SourceError:
        return SourceError(f"{self.source} source: cannot read ({_first_line(exc)})")


class DuckDBReader(Reader):
    kind = "duckdb"

    def __init__(self, source: str, path: Path, relation: str):
        import duckdb

        self.source, self.relation = source, relation
        if not path.exists():
            raise SourceError(f"{source} source: DuckDB file {path} does not exist")
        try:
            self.con = duckdb.connect(str(path), read_only=True)
            self.con.execute(DUCKDB_UTC)
            limit_duckdb_files(self.con, [])  # a source database reads nothing else
        except duckdb.Error as exc:
            raise SourceError(f"{source} source: cannot open {path}: {_first_line(exc)}") from exc

    def stream(self, sql: str, params: Sequence[Any], chunk_rows: int) -> Iterator[pa.RecordBatch]:
        try:
            reader = self.con.sql(sql, params=list(params) or None).to_arrow_reader(chunk_rows)
            yield from reader
        except Exception as exc:  # noqa: BLE001 - any driver error: the source is unreadable
            raise self.fail(exc) from exc

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        try:
            rows = self.con.execute(sql, list(params)).fetchall()
        except Exception as exc:  # noqa: BLE001
            raise self.fail(exc) from exc
        return rows[0] if rows else None

    def close(self) -> None:
        self.con.close()


class FileReader(DuckDBReader):
    """Parquet or CSV files (a path or a glob) scanned by an in-memory DuckDB."""

    kind = "files"

    def __init__(self, source: str, pattern: str, fmt: str):
        import duckdb

        if fmt not in FILE_FORMATS:
            raise SourceError(f"{source} source: format {fmt!r} is not one of {FILE_FORMATS}")
        self.source = source
        self.con = duckdb.connect()
        self.con.execute(DUCKDB_UTC)
        limit_duckdb_files(self.con, [fixed_dir(pattern)])  # the configured files, nothing else
        lit = sql_literal(pattern)
        if fmt == "parquet":
            self.relation = f"read_parquet({lit}, union_by_name = true)"
        else:
            self.relation = f"read_csv({lit}, header = true, all_varchar = true, union_by_name = true)"
            self.text_times = True


class PostgresReader(Reader):
    """PostgreSQL through psycopg: COPY TO STDOUT (CSV), parsed by Arrow in blocks."""

    kind = "postgres"

    def __init__(self, source: str, target: Any, relation: str):
        import psycopg

        self.source, self.relation = source, relation
        try:
            self.con = psycopg.connect(**target.libpq_kwargs(), autocommit=True)
        except psycopg.OperationalError as exc:
            first = (str(exc).strip().splitlines() or ["unreachable"])[-1]
            raise SourceError(f"{source} source: cannot reach {target.redacted()}: {first}") from exc
        self.con.execute(POSTGRES_UTC)

    def stream(self, sql: str, params: Sequence[Any], chunk_rows: int) -> Iterator[pa.RecordBatch]:
        import pyarrow.csv as pacsv
        from psycopg import sql as pgsql

        try:
            with self.con.cursor() as cur:
                query = pgsql.SQL(sql.replace("?", "{}")).format(*[pgsql.Literal(p) for p in params])
                stmt = pgsql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true, FORCE_QUOTE *)")
                with cur.copy(stmt.format(query)) as copy:
                    stream = _CopyStream(copy)
                    header = stream.peek_header()
                    reader = pacsv.open_csv(
                        stream,
                        read_options=pacsv.ReadOptions(use_threads=False, block_size=8 << 20),
                        convert_options=pacsv.ConvertOptions(
                            column_types={n: pa.string() for n in header},
                            strings_can_be_null=True, quoted_strings_can_be_null=False,
                            null_values=[""]),
                    )
                    yield from reader
        except MeterlineError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.fail(exc) from exc

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        try:
            with self.con.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), list(params) or None)
                return cur.fetchone()
        except Exception as exc:  # noqa: BLE001
            raise self.fail(exc) from exc

    def close(self) -> None:
        self.con.close()


class _CopyStream(io.RawIOBase):
    """A file-like view of psycopg's COPY TO data, block by block."""

    def __init__(self, copy: Any):
        self._it = iter(copy)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def peek_header(self) -> list[str]:
        import csv

        while b"\n" not in self._buf:
            block = next(self._it, None)
            if block is None:
                break
            self._buf += bytes(block)
        line = self._buf.split(b"\n", 1)[0].decode()
        return next(csv.reader([line])) if line else []

    def readinto(self, b: Any) -> int:
        # fill the whole request: psycopg hands out COPY data row by row, and Arrow makes a
        # record batch of every read, so short reads would mean one-row chunks
        want = len(b)
        parts, have = [self._buf], len(self._buf)
        while have < want:
            block = next(self._it, None)
            if block is None:
                break
            block = bytes(block)
            parts.append(block)
            have += len(block)
        data = b"".join(parts)
        n = min(want, len(data))
        b[:n] = data[:n]
        self._buf = data[n:]
        return n


class SqlAlchemyReader(Reader):
    """Any other database SQLAlchemy can reach, streamed with `yield_per`."""

    kind = "sqlalchemy"

    def __init__(self, source: str, url: str, relation: str):
        import sqlalchemy as sa

        self.source, self.relation = source, relation
        try:
            self.url = sa.make_url(url)
            self.engine = sa.create_engine(self.url)
            self.con = self.engine.connect()
        except Exception as exc:  # noqa: BLE001
            shown = self.url.render_as_string(hide_password=True) if hasattr(self, "url") else "?"
            raise SourceError(f"{source} source: cannot reach {shown}: {_first_line(exc)}") from exc
        self.text_times = self.url.get_backend_name() == "sqlite"
        if self.url.get_backend_name() == "postgresql":
            self.con.exec_driver_sql(POSTGRES_UTC)

    @staticmethod
    def _named(sql: str, params: Sequence[Any]) -> tuple[str, dict[str, Any]]:
        parts = sql.split("?")
        out = parts[0]
        for i, part in enumerate(parts[1:]):
            out += f":p{i}" + part
        return out, {f"p{i}": p for i, p in enumerate(params)}

    def stream(self, sql: str, params: Sequence[Any], chunk_rows: int) -> Iterator[pa.RecordBatch]:
        import sqlalchemy as sa

        text, named = self._named(sql, params)
        try:
            result = self.con.execution_options(stream_results=True, yield_per=chunk_rows).execute(
                sa.text(text), named)
            names = list(result.keys())
            for part in result.partitions(chunk_rows):
                yield pa.RecordBatch.from_arrays(
                    [pa.array([row[i] for row in part]) for i in range(len(names))], names=names)
        except MeterlineError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.fail(exc) from exc

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        import sqlalchemy as sa

        text, named = self._named(sql, params)
        try:
            row = self.con.execute(sa.text(text), named).first()
        except Exception as exc:  # noqa: BLE001
            raise self.fail(exc) from exc
        return tuple(row) if row is not None else None

    def close(self) -> None:
        self.con.close()
        self.engine.dispose()


def quote(name: str) -> str:
    """A quoted identifier (meterline.warehouse.quote_ident: refuses "" and NUL)."""
    return quote_ident(name)


def sql_literal(text: str) -> str:
    """A SQL string literal (a file path or glob from the config); NUL is refused."""
    if "\x00" in text:
        raise SourceError(f"a NUL character cannot be part of a SQL string: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def source_relation(cfg: Config, source: str, table: str) -> str:
    """The FROM target of `table` in a SQL source: `"schema"."table"` or `"table"`. The names
    come from the config, which allow-lists them (meterline.config.IDENTIFIER_RE); quoted too."""
    schema = cfg.get("sources", f"{source}_schema")
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)


def file_source(cfg: Config, source: str) -> tuple[str, str] | None:
    """(absolute path or glob, format) when `source` is read from Parquet / CSV files."""
    if source != "metering" or not cfg.get("sources", "metering_path"):
        return None
    pattern = cfg.get("sources", "metering_path")
    if not Path(pattern).is_absolute():
        pattern = str(cfg.base_dir / pattern)
    return pattern, cfg.get("sources", "metering_format")


def open_reader(cfg: Config, source: str, table: str) -> Reader:
    """The reader for `source` (metering or billing) positioned on its `table`."""
    files = file_source(cfg, source)
    if files is not None:
        return FileReader(source, *files)
    url: str = cfg.get("sources", f"{source}_url")
    relation = source_relation(cfg, source, table)
    if url.startswith(("duckdb:///", "postgresql://", "postgres://")):
        try:
            target = cfg.source_target(source)
        except MeterlineError as exc:
            raise SourceError(f"{source} source: {exc}") from exc
        if target.kind == "duckdb":
            assert target.path is not None
            return DuckDBReader(source, target.path, relation)
        return PostgresReader(source, target, relation)
    if "://" not in url:
        raise SourceError(f"{source} source: {url!r} is not a database URL")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///"):]
        if rel and not rel.startswith(":"):
            url = "sqlite:///" + str((cfg.base_dir / rel).resolve())
    return SqlAlchemyReader(source, url, relation)


def as_datetime(value: Any) -> dt.datetime | None:
    """A min/max timestamp as the source returned it (drivers differ: text on SQLite)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        return None
