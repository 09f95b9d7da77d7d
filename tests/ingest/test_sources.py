"""Every source kind loads the same raw rows; reruns skip or replace; crashes leave nothing.

The reference is the sample world's DuckDB sources loaded into a DuckDB warehouse. The same
world read from PostgreSQL, SQLite (any SQLAlchemy URL), Parquet and CSV files (a path and a
glob), and loaded into PostgreSQL, must give identical raw tables, quarantine and ledger.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from ingest.load import BatchResult, ensure_raw, load_batch
from ingest.raw_schema import RAW_TABLES
from ingest.sql_sources import extract_billing, extract_metering, metering_coverage
from meterline.config import Config, load_config, parse_db_url
from meterline.errors import SourceError
from meterline.sample import generate
from meterline.warehouse import Connection, connect

T0 = dt.datetime(2026, 12, 1, 2, 0)
# 10-17 holds the planted negative quantity, 10-19 the planted duplicate row
DAYS = [dt.date(2026, 10, 17), dt.date(2026, 10, 19)]
TABLES = [t for t in RAW_TABLES if not t.startswith("stripe_")] + ["quarantine", "batch_ledger"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate(out, seed=3, accounts=6, days=34)
    return out


def config(base: Path, sources: dict[str, Any], chunk_rows: int = 500, **pipeline: Any) -> Config:
    lines = ["[sources]"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in sources.items()]
    lines += ["[pipeline]", f"chunk_rows = {chunk_rows}"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in pipeline.items()]
    (base / "meterline.toml").write_text("\n".join(lines) + "\n")
    return load_config(base / "meterline.toml", env={})


def duck_sources(world: Path) -> dict[str, Any]:
    return {"metering_url": f"duckdb:///{world}/sources/metering.duckdb",
            "billing_url": f"duckdb:///{world}/sources/billing.duckdb"}


def load_days(cfg: Config, conn: Connection, days: list[dt.date] = DAYS) -> list[BatchResult]:
    ensure_raw(conn)
    out = []
    for day in days:
        start = dt.datetime.combine(day, dt.time())
        end = start + dt.timedelta(days=1)
        for source, extract in (("billing", extract_billing), ("metering", extract_metering)):
            out.append(load_batch(conn, source, start, end, extract(cfg, day), T0,
                                  max_quarantine_share=cfg.get("pipeline", "quarantine_max_share"),
                                  chunk_rows=cfg.get("pipeline", "chunk_rows")))
    return out


def snapshot(conn: Connection) -> dict[str, list[tuple]]:
    return {t: sorted(conn.fetchall(f'SELECT * FROM raw."{t}"'), key=repr) for t in TABLES}


@pytest.fixture(scope="module")
def reference(world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    base = tmp_path_factory.mktemp("ref")
    cfg = config(base, duck_sources(world))
    with connect(cfg.warehouse) as conn:
        results = load_days(cfg, conn)
        snap = snapshot(conn)
    assert [r.action for r in results] == ["loaded"] * 4
    assert results[1].quarantined == {"negative_quantity": 1}
    assert results[3].quarantined == {"duplicate_key": 1}
    assert len(snap["metering_usage_hourly"]) > 1000 and len(snap["quarantine"]) == 2
    # credit grants and commitments: a full snapshot each night, money as integer minor units
    src = duckdb.connect(str(world / "sources" / "billing.duckdb"), read_only=True)
    for table in ("credits", "commitments"):
        rows = src.execute(f"SELECT * FROM {table}").fetchall()
        assert rows and sorted(r[:-3] for r in snap[f"billing_{table}"]) == sorted(rows * 2), table
    src.close()
    assert all(isinstance(r[3], int) for r in snap["billing_credits"] + snap["billing_commitments"])
    return snap


def assert_same(got: dict[str, list[tuple]], want: dict[str, list[tuple]]) -> None:
    for table in TABLES:
        assert got[table] == want[table], table


def _export_metering(world: Path, out: Path, fmt: str, files: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(world / "sources" / "metering.duckdb"), read_only=True)
    opts = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    for i in range(files):
        con.execute(f"COPY (SELECT * FROM usage_hourly WHERE hash(account_id, hour_start) % {files} = {i}) "
                    f"TO '{out}/part-{i}.{fmt}' ({opts})")
    con.close()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("files", [1, 3])
def test_files_give_the_same_raw(world: Path, reference: dict, tmp_path: Path, fmt: str,
                                 files: int) -> None:
    _export_metering(world, tmp_path / "usage", fmt, files)
    path = f"usage/part-0.{fmt}" if files == 1 else f"usage/*.{fmt}"
    cfg = config(tmp_path, {**duck_sources(world), "metering_path": path, "metering_format": fmt})
    assert metering_coverage(cfg) == (dt.date(2026, 10, 1), dt.date(2026, 11, 3))
    with connect(cfg.warehouse) as conn:
        load_days(cfg, conn)
        assert_same(snapshot(conn), reference)


def test_sqlalchemy_sqlite_gives_the_same_raw(world: Path, reference: dict, tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "sources.db")
    for name, file in [("usage_hourly", "metering"), ("accounts", "billing"), ("plans", "billing"),
                       ("subscriptions", "billing"), ("price_books", "billing"),
                       ("usage_counters", "billing"), ("credits", "billing"),
                       ("commitments", "billing"), ("discounts", "billing"),
                       ("spike_releases", "billing")]:
        con = duckdb.connect(str(world / "sources" / f"{file}.duckdb"), read_only=True)
        cur = con.execute(f"SELECT * FROM {name}")
        cols = [d[0] for d in cur.description]
        rows = [tuple(str(v) if v is not None and not isinstance(v, int) else v for v in r)
                for r in cur.fetchall()]  # timestamps, dates and decimals as text
        con.close()
        db.execute(f"CREATE TABLE {name} ({', '.join(cols)})")
        db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in cols)})", rows)
    db.commit()
    db.close()
    cfg = config(tmp_path, {"metering_url": "sqlite:///sources.db", "billing_url": "sqlite:///sources.db"})
    with connect(cfg.warehouse) as conn:
        load_days(cfg, conn)
        assert_same(snapshot(conn), reference)


@pytest.mark.postgres
def test_postgres_sources_give_the_same_raw(reference: dict, tmp_path: Path, pg_url: str) -> None:
    generate(tmp_path / "pgworld", seed=3, accounts=6, days=34, postgres_url=pg_url,
             pg_schema_prefix="src")
    cfg = config(tmp_path, {"metering_url": pg_url, "metering_schema": "src_metering",
                            "billing_url": pg_url, "billing_schema": "src_billing"})
    assert metering_coverage(cfg) == (dt.date(2026, 10, 1), dt.date(2026, 11, 3))
    with connect(cfg.warehouse) as conn:
        load_days(cfg, conn)
        assert_same(snapshot(conn), reference)


@pytest.mark.postgres
def test_postgres_warehouse_gets_the_same_raw(world: Path, reference: dict, tmp_path: Path,
                                              pg_url: str) -> None:
    cfg = config(tmp_path, duck_sources(world))
    with connect(parse_db_url(pg_url, tmp_path, "test")) as conn:
        load_days(cfg, conn)
        assert_same(snapshot(conn), reference)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Connection]:
    url = "duckdb:///wh.duckdb" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    with connect(parse_db_url(url, tmp_path, "test")) as conn:
        yield conn


def test_rerun_skips_then_changed_source_replaces(world: Path, reference: dict, tmp_path: Path,
                                                   warehouse: Connection) -> None:
    src = tmp_path / "sources"
    shutil.copytree(world / "sources", src, ignore=shutil.ignore_patterns("stripe"))
    cfg = config(tmp_path, duck_sources(tmp_path))
    first = load_days(cfg, warehouse)
    again = load_days(cfg, warehouse)
    assert [r.action for r in again] == ["skipped_identical"] * 4
    assert [r.batch_id for r in again] == [r.batch_id for r in first]
    assert again[1].quarantined == {"negative_quantity": 1}
    assert_same(snapshot(warehouse), reference)

    con = duckdb.connect(str(src / "metering.duckdb"))
    con.execute("UPDATE usage_hourly SET quantity = quantity + 1 WHERE updated_at >= '2026-10-19' "
                "AND updated_at < '2026-10-20' AND quantity >= 0")
    con.close()
    third = load_days(cfg, warehouse)
    assert [r.action for r in third] == ["skipped_identical"] * 3 + ["replaced"]
    snap = snapshot(warehouse)
    ledger = [r for r in snap["batch_ledger"] if r[1] == "metering"]
    assert len(ledger) == 2 and third[3].batch_id in {r[0] for r in ledger}
    assert first[3].batch_id not in {r[0] for r in ledger}
    old = {r for r in reference["metering_usage_hourly"] if r[7] == first[3].batch_id}
    new = [r for r in snap["metering_usage_hourly"] if r[7] == third[3].batch_id]
    assert len(new) == len(old) and not any(r[7] == first[3].batch_id for r in snap["metering_usage_hourly"])
    assert sum(r[5] for r in new) == sum(r[5] for r in old) + len(new)


def test_killed_between_chunks_then_rerun_equals_clean(world: Path, reference: dict, tmp_path: Path,
                                                       warehouse: Connection,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path, duck_sources(world), chunk_rows=200)
    original = Connection.insert_arrow
    calls = {"n": 0}

    def dying(self: Connection, schema: str, table: str, data: pa.Table, chunk_rows: int = 200_000) -> int:
        if table == "metering_usage_hourly":
            calls["n"] += 1
            if calls["n"] == 4:
                raise KeyboardInterrupt("killed between chunks")
        return original(self, schema, table, data, chunk_rows)

    monkeypatch.setattr(Connection, "insert_arrow", dying)
    with pytest.raises(KeyboardInterrupt):
        load_days(cfg, warehouse)
    assert calls["n"] == 4
    part = snapshot(warehouse)
    assert part["metering_usage_hourly"] == [] and [r[1] for r in part["batch_ledger"]] == ["billing"]
    monkeypatch.setattr(Connection, "insert_arrow", original)
    load_days(cfg, warehouse)
    assert_same(snapshot(warehouse), reference)


def test_source_dying_mid_read_loads_nothing(world: Path, tmp_path: Path) -> None:
    cfg = config(tmp_path, duck_sources(world), chunk_rows=100)

    def half(chunks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield next(chunks)
        yield next(chunks)
        raise SourceError("metering source: cannot read (connection reset)")

    start = dt.datetime(2026, 10, 17)
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        tables = extract_metering(cfg, start.date())
        with pytest.raises(SourceError, match="metering source"):
            load_batch(conn, "metering", start, start + dt.timedelta(days=1),
                       {"metering_usage_hourly": half(tables["metering_usage_hourly"])}, T0,
                       chunk_rows=100)
        assert conn.fetchone("SELECT count(*) FROM raw.metering_usage_hourly")[0] == 0
        assert conn.fetchone("SELECT count(*) FROM raw.batch_ledger")[0] == 0


@pytest.mark.parametrize("sources, name", [
    ({"metering_url": "postgresql://nobody@127.0.0.1:1/nothing"}, "metering"),
    ({"metering_path": "nowhere/*.parquet"}, "metering"),
    ({"metering_url": "duckdb:///missing.duckdb"}, "metering"),
    ({"billing_url": "sqlite:////nonexistent/dir/billing.db"}, "billing"),
    ({"billing_url": "mysql+nosuchdriver://u@h/db"}, "billing"),
])
def test_unreachable_source_is_named(world: Path, tmp_path: Path, sources: dict, name: str) -> None:
    from ingest.sql_sources import probe

    cfg = config(tmp_path, {**duck_sources(world), **sources})
    with pytest.raises(SourceError, match=f"^{name} source"):
        probe(cfg, name)
    extract = extract_metering if name == "metering" else extract_billing
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        with pytest.raises(SourceError, match=f"^{name} source"):
            load_batch(conn, name, T0, T0 + dt.timedelta(days=1), extract(cfg, DAYS[0]), T0)
        assert conn.fetchone("SELECT count(*) FROM raw.batch_ledger")[0] == 0
