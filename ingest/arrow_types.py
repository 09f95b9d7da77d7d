"""Arrow schemas for the raw tables, derived from `ingest.raw_schema`."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ingest.raw_schema import RAW_TABLES


def arrow_type(sql_type: str) -> pa.DataType:
    t = sql_type.upper().replace(" ", "")
    if t == "VARCHAR":
        return pa.string()
    if t == "TIMESTAMP":
        return pa.timestamp("us")
    if t == "BIGINT":
        return pa.int64()
    if t == "INTEGER":
        return pa.int32()
    if t == "DATE":
        return pa.date32()
    if t.startswith("DECIMAL("):
        p, s = t[len("DECIMAL(") : -1].split(",")
        return pa.decimal128(int(p), int(s))
    raise ValueError(f"no Arrow type for {sql_type}")


def raw_arrow_schema(table: str) -> pa.Schema:
    return pa.schema([(name, arrow_type(typ)) for name, typ in RAW_TABLES[table]])


def to_raw_table(table: str, data: pa.Table | list[dict[str, Any]]) -> pa.Table:
    """Cast extracted rows to the raw contract's exact column order and types."""
    schema = raw_arrow_schema(table)
    if isinstance(data, list):
        return pa.Table.from_pylist(data, schema=schema)
    missing = [f.name for f in schema if f.name not in data.column_names]
    if missing:
        raise ValueError(f"{table}: source lacks columns {missing}")
    return data.select(schema.names).cast(schema)
