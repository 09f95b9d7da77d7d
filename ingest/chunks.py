"""Per-chunk typing, contract checks and checksums, done in an in-process DuckDB.

Every chunk a source yields is cast to the raw contract here, whatever warehouse it is going
to, so DuckDB and PostgreSQL warehouses get the same rows, the same quarantine decisions and
the same checksums. Time columns that arrive as text (CSV files, SQLite, …) are parsed here;
text that does not parse quarantines the row (`unparsable_timestamp`) instead of failing the
load. Money columns never pass through a float: a floating-point source column for a DECIMAL
contract column is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from ingest.arrow_types import raw_arrow_schema
from ingest.contracts import ISO_4217, contract, known_categories
from ingest.raw_schema import RAW_TABLES
from ingest.readers import DUCKDB_UTC, text_timestamp
from meterline.errors import SourceError
from meterline.warehouse import limit_duckdb_files

Chunks = pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch | pa.Table]

QUARANTINE_ARROW = pa.schema([
    ("raw_table", pa.string()),
    ("reason", pa.string()),
    ("account_id", pa.string()),
    ("category", pa.string()),
    ("day", pa.date32()),
    ("row_json", pa.string()),
])


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def iter_chunks(data: Chunks, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of at most `chunk_rows` rows from a table, a batch or an iterable of them."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        data = [data]
    for item in data:
        if isinstance(item, pa.Table):
            yield from item.to_batches(max_chunksize=chunk_rows)
        elif item.num_rows > chunk_rows:
            for offset in range(0, item.num_rows, chunk_rows):
                yield item.slice(offset, chunk_rows)
        else:
            yield item


@dataclass
class CheckedChunk:
    good: pa.Table          # rows for the raw table, exact raw contract schema
    bad: pa.Table           # quarantine rows (QUARANTINE_ARROW)
    rows: int               # rows read
    hash_sum: int           # Σ row hash mod 2**64 (order-independent)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


class ChunkChecker:
    """Casts, checks and hashes chunks of one raw table after another."""

    def __init__(self) -> None:
        self.db = duckdb.connect()
        self.db.execute("SET threads = 2")
        self.db.execute(DUCKDB_UTC)  # a zoned time (Arrow timestamp with tz) casts to UTC
        limit_duckdb_files(self.db, [])  # checks Arrow chunks in memory: no file to reach
        self._sql: dict[tuple[str, pa.Schema], str] = {}

    def close(self) -> None:
        self.db.close()

    def query(self, raw_table: str, schema: pa.Schema, relation: str = "chunk") -> str:
        """The check query over `relation` (a table name or a parenthesised subquery)."""
        return self._select(raw_table, schema) + f" FROM {relation}"

    def _select(self, raw_table: str, schema: pa.Schema) -> str:
        key = (raw_table, schema)
        if key in self._sql:
            return self._sql[key]
        c = contract(raw_table)
        cols = RAW_TABLES[raw_table]
        missing = [n for n, _ in cols if n not in schema.names]
        if missing:
            raise SourceError(f"{raw_table}: source lacks columns {missing}")
        expr: dict[str, str] = {}
        text_times: set[str] = set()
        unparsed, bad_time = [], []
        for name, sql_type in cols:
            src_type = schema.field(name).type
            is_time = sql_type in ("TIMESTAMP", "DATE")
            is_money = sql_type.startswith("DECIMAL") or name in c.amounts or name.endswith("_minor")
            if is_money and pa.types.is_floating(src_type):
                raise SourceError(
                    f"{raw_table}.{name} is money but the source gives a float ({src_type}); "
                    "store it as DECIMAL or text")
            if is_time and _is_text(src_type):
                expr[name] = (text_timestamp(q(name)) if sql_type == "TIMESTAMP"
                              else f"try_cast({q(name)} AS {sql_type})")
                text_times.add(name)
                flag = f"({q(name)} IS NOT NULL AND {expr[name]} IS NULL)"
                unparsed.append(f"CASE WHEN {flag} THEN {lit(name + '=')} || {q(name)} END")
                bad_time.append(flag)
            else:
                expr[name] = f"CAST({q(name)} AS {sql_type})"
            if name in c.time_columns:
                bad_time.append(f"{expr[name]} IS NULL")
        unparsed_expr = (f"nullif(concat_ws('|', {', '.join(unparsed)}), '')" if unparsed
                         else "CAST(NULL AS VARCHAR)")
        checks: list[tuple[str, str]] = []
        if bad_time:
            checks.append(("unparsable_timestamp", " OR ".join(bad_time)))
        if c.account:
            a = expr[c.account]
            checks.append(("missing_account", f"{a} IS NULL OR {a} = ''"))
        if c.quantity:
            checks.append(("negative_quantity", f"{expr[c.quantity]} < 0"))
        if c.amounts:
            checks.append(("negative_amount", " OR ".join(f"{expr[a]} < 0" for a in c.amounts)))
        if c.category:
            cats = ", ".join(lit(x) for x in known_categories())
            k = expr[c.category]
            checks.append(("unknown_category", f"{k} IS NULL OR {k} NOT IN ({cats})"))
        if c.currency:
            codes = ", ".join(lit(x) for x in sorted(ISO_4217))
            k = expr[c.currency]
            checks.append(("invalid_currency", f"{k} IS NULL OR {k} NOT IN ({codes})"))
        reason = ("CASE " + " ".join(f"WHEN {cond} THEN {lit(r)}" for r, cond in checks)
                  + " END") if checks else "CAST(NULL AS VARCHAR)"
        names = [n for n, _ in cols]
        typed_cols = ", ".join(expr[n] for n in names)
        null_text = "CAST(NULL AS VARCHAR)"
        day = f"CAST({expr[c.day_column]} AS DATE)" if c.day_column else "CAST(NULL AS DATE)"
        # the row as typed by the contract; a time that does not parse keeps its source text
        as_json = {n: f"coalesce(CAST({expr[n]} AS VARCHAR), {q(n)})" if n in text_times
                   else expr[n] for n in names}
        src_struct = ", ".join(f"{q(n)} := {as_json[n]}" for n in names)
        sql = (
            "SELECT " + ", ".join(f"{expr[n]} AS {q(n)}" for n in names)
            + f", hash({typed_cols}, {unparsed_expr}) AS __hash"
            + f", {reason} AS __reason"
            + f", {expr[c.account] if c.account else null_text} AS __account_id"
            + f", {expr[c.category] if c.category else null_text} AS __category"
            + f", {day} AS __day"
            + f", CASE WHEN ({reason}) IS NOT NULL THEN CAST(to_json(struct_pack({src_struct}))"
            + " AS VARCHAR) END AS __row_json"
        )
        self._sql[key] = sql
        return sql

    def check(self, raw_table: str, chunk: pa.RecordBatch) -> CheckedChunk:
        sql = self.query(raw_table, chunk.schema)
        self.db.register("chunk", chunk)
        try:
            out = self.db.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SourceError(f"{raw_table}: a value does not fit the raw contract ({first})") from exc
        finally:
            self.db.unregister("chunk")
        import pyarrow.compute as pc

        reason = out.column("__reason")
        is_bad = pc.is_valid(reason)
        n_bad = pc.sum(is_bad).as_py() or 0
        hsum = pc.sum(out.column("__hash")).as_py() or 0
        schema = raw_arrow_schema(raw_table)
        good_rows = out.filter(pc.invert(is_bad)) if n_bad else out
        good = good_rows.select(schema.names).cast(schema)
        if n_bad:
            bad_rows = out.filter(is_bad)
            bad = pa.table({
                "raw_table": pa.array([raw_table] * n_bad, pa.string()),
                "reason": bad_rows.column("__reason"),
                "account_id": bad_rows.column("__account_id"),
                "category": bad_rows.column("__category"),
                "day": bad_rows.column("__day"),
                "row_json": bad_rows.column("__row_json"),
            }).cast(QUARANTINE_ARROW)
        else:
            bad = QUARANTINE_ARROW.empty_table()
        return CheckedChunk(good=good, bad=bad, rows=chunk.num_rows, hash_sum=hsum % 2**64)

    def row_json(self, rows: pa.Table) -> list[str]:
        """The JSON rendering used for quarantined rows, for rows already in raw form."""
        names = ", ".join(f"{q(n)} := {q(n)}" for n in rows.column_names)
        self.db.register("rows_in", rows)
        try:
            return [r[0] for r in self.db.sql(
                f"SELECT CAST(to_json(struct_pack({names})) AS VARCHAR) FROM rows_in").fetchall()]
        finally:
            self.db.unregister("rows_in")
