"""Ingest speed: the metering loader against bare DuckDB and against row-by-row INSERT.

    python -m bench.ingest_bench --rows 10000000 [--pg postgresql://postgres@127.0.0.1:5432/postgres]

In ONE run it writes N metering rows as Parquet files and measures:

- DuckDB: `SELECT count(*) FROM read_parquet(...)` (the bare count; DuckDB answers it from the
  Parquet footers), a bare `CREATE TABLE AS SELECT * FROM read_parquet(...)` (what merely
  materialising the rows costs), and meterline's load (`extract_metering` → `load_batch`:
  chunked Arrow, contract checks, checksum, duplicate check, one transaction) into a DuckDB
  warehouse. Scans that must read the rows are measured too: a count with the loader's window
  predicate, a sum / distinct count, and a hash over every column. Target: load ≤ 2 × bare count.
- PostgreSQL: the same `--pg-rows` metering rows (generated like the Parquet files, independent
  of `--rows`) appended into identical fresh tables, each way in its own transaction with the
  COMMIT inside the timing, `--pg-repeat` times interleaved (medians reported): the loader's
  COPY path (`Connection.insert_arrow`: binary COPY), the previous CSV COPY path, psycopg 3's
  default `executemany` INSERT, and once one `cursor.execute` INSERT per row. A diagnostic
  `copy_preencoded` sends the loader's binary COPY bytes encoded before the clock starts (what
  COPY costs the server and the wire alone). The loaded tables are compared row for row.
  Target (issue 3, against `executemany`): COPY ≥ 20 × faster.

Prints one JSON object: timings, ratios and whether each target holds. No assertions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

DAY = dt.date(2026, 10, 10)


def rows_sql(lo: int, hi: int) -> str:
    """Metering rows lo..hi-1 inside night DAY's window: hours in [DAY-3, DAY+1), versions
    written on DAY."""
    return f"""
        SELECT
            TIMESTAMP '{DAY - dt.timedelta(days=3)}' + to_hours((i % 96)::BIGINT) AS hour_start,
            'acct_' || lpad(((i // 96) % 5000)::VARCHAR, 4, '0') AS account_id,
            'proj_' || ((i // 480000) % 1000)::VARCHAR AS project_id,
            (['error', 'transaction', 'span', 'replay', 'attachment'])[((i // 96) // 5000) % 5 + 1]
                AS category,
            'accepted' AS outcome,
            (i % 100000)::BIGINT AS quantity,
            TIMESTAMP '{DAY}' + to_microseconds((i * 8191 % 86400000000)::BIGINT) AS updated_at
        FROM range({lo}, {hi}) t(i)"""


def write_parquet(out: Path, rows: int, files: int) -> None:
    """N rows (`rows_sql`) as `files` Parquet files."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    per = -(-rows // files)
    for f in range(files):
        lo, hi = f * per, min(rows, (f + 1) * per)
        if lo >= hi:
            break
        con.execute(f"COPY ({rows_sql(lo, hi)}) TO '{out}/part-{f:03d}.parquet' (FORMAT parquet)")
    con.close()


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def bench_duckdb(work: Path, glob: str, rows: int, chunk_rows: int) -> dict[str, Any]:
    from ingest.load import ensure_raw, load_batch
    from ingest.sql_sources import extract_metering
    from meterline.config import load_config
    from meterline.warehouse import connect

    start = dt.datetime.combine(DAY, dt.time())
    window = (
        f"(hour_start IS NULL OR (hour_start >= TIMESTAMP '{start - dt.timedelta(days=3)}' "
        f"AND hour_start < TIMESTAMP '{start + dt.timedelta(days=1)}')) AND "
        f"(updated_at IS NULL OR (updated_at >= TIMESTAMP '{start}' "
        f"AND updated_at < TIMESTAMP '{start + dt.timedelta(days=1)}'))"
    )
    con = duckdb.connect()
    count_s, n = timed(
        lambda: con.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()[0][0]
    )
    # scans that must read the data: the loader's window predicate, and a sum over a column
    window_s, nw = timed(
        lambda: con.sql(f"SELECT count(*) FROM read_parquet('{glob}') WHERE {window}").fetchall()[
            0
        ][0]
    )
    sum_s, _ = timed(
        lambda: con.sql(
            f"SELECT sum(quantity), count(DISTINCT account_id) FROM read_parquet('{glob}')"
        ).fetchall()
    )
    cols = "hour_start, account_id, project_id, category, outcome, quantity, updated_at"
    hash_s, _ = timed(
        lambda: con.sql(
            f"SELECT sum(hash({cols})) FROM read_parquet('{glob}') WHERE {window}"
        ).fetchall()
    )
    con.close()
    assert n == rows and nw == rows, (n, nw, rows)
    ctas_db = duckdb.connect(str(work / "ctas.duckdb"))
    ctas_s, _ = timed(
        lambda: ctas_db.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{glob}')")
    )
    ctas_db.close()

    (work / "meterline.toml").write_text(
        f'[warehouse]\nurl = "duckdb:///{work}/wh.duckdb"\n'
        f'[sources]\nmetering_path = "{glob}"\nmetering_format = "parquet"\n'
        f"[pipeline]\nchunk_rows = {chunk_rows}\n"
    )
    cfg = load_config(work / "meterline.toml", env={})
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        load_s, result = timed(
            lambda: load_batch(
                conn,
                "metering",
                start,
                start + dt.timedelta(days=1),
                extract_metering(cfg, DAY),
                dt.datetime(2026, 10, 11, 1),
                chunk_rows=chunk_rows,
                max_quarantine_share=cfg.get("pipeline", "quarantine_max_share"),
            )
        )
        rerun_s, again = timed(
            lambda: load_batch(
                conn,
                "metering",
                start,
                start + dt.timedelta(days=1),
                extract_metering(cfg, DAY),
                dt.datetime(2026, 10, 11, 2),
                chunk_rows=chunk_rows,
            )
        )
        loaded = conn.fetchone("SELECT count(*) FROM raw.metering_usage_hourly")[0]
    assert loaded == rows and result.rows == rows and again.action == "skipped_identical"
    return {
        "bare_count_s": round(count_s, 4),
        "bare_window_count_s": round(window_s, 3),
        "bare_sum_scan_s": round(sum_s, 3),
        "bare_hash_all_columns_s": round(hash_s, 3),
        "bare_ctas_s": round(ctas_s, 3),
        "load_s": round(load_s, 3),
        "rerun_skipped_s": round(rerun_s, 3),
        "rows_per_s": int(rows / load_s),
        "ratio_load_to_bare_count": round(load_s / count_s, 1),
        "ratio_load_to_bare_window_count": round(load_s / window_s, 2),
        "ratio_load_to_bare_sum_scan": round(load_s / sum_s, 2),
        "ratio_load_to_bare_hash_all_columns": round(load_s / hash_s, 2),
        "ratio_load_to_bare_ctas": round(load_s / ctas_s, 2),
        "target_load_within_2x_bare_count": load_s <= 2 * count_s,
        "load_within_2x_bare_window_count": load_s <= 2 * window_s,
        "load_within_2x_bare_hash_all_columns": load_s <= 2 * hash_s,
        "load_within_2x_bare_ctas": load_s <= 2 * ctas_s,
    }


def bench_postgres(admin_url: str, pg_rows: int, repeat: int, per_row: bool) -> dict[str, Any]:
    """The same rows into identical fresh tables, each way in its own transaction, `repeat`
    times (interleaved, medians reported): the loader's COPY path, the previous CSV COPY and
    psycopg 3's default `executemany`; one `cursor.execute` per row once."""
    import psycopg

    from ingest.arrow_types import to_raw_table
    from ingest.raw_schema import all_raw_tables
    from meterline.config import parse_db_url
    from meterline.warehouse import (
        _BINARY_BLOCK_ROWS,
        _PGCOPY_HEADER,
        _PGCOPY_TRAILER,
        _binary_encoders,
        _binary_rows,
        _copy_csv,
        _pg_column_types,
        connect,
        qualified,
    )

    con = duckdb.connect()
    sample = to_raw_table("metering_usage_hourly", con.sql(rows_sql(0, pg_rows)).to_arrow_table())
    con.close()
    n = sample.num_rows
    sample = (
        sample.append_column("_batch_id", [["b"] * n])
        .append_column("_extracted_at", [[dt.datetime(2026, 10, 11)] * n])
        .append_column("_source", [["metering"] * n])
    )
    name = f"meterline_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    cols = all_raw_tables()["metering_usage_hourly"]
    names = ", ".join(f'"{c}"' for c, _ in cols)
    marks = ", ".join(["%s"] * len(cols))
    rows = [tuple(r.values()) for r in sample.to_pylist()]
    runs: dict[str, list[float]] = {
        "copy": [],
        "copy_csv": [],
        "executemany": [],
        "copy_preencoded": [],
    }
    try:
        with connect(parse_db_url(url, Path.cwd(), "bench")) as conn:
            conn.ensure_schema("raw")
            for i in range(repeat):
                for way in runs:
                    conn.ensure_table("raw", f"{way}_{i}", cols)
            with conn.raw.cursor() as cur:
                encoders = _binary_encoders(sample, _pg_column_types(cur, "raw.copy_0"))
            # diagnostic: the same binary COPY with its bytes encoded before the clock starts
            # (transfer, server parse and insert, commit): how fast COPY could be, client aside
            blocks = (
                [
                    bytes(_binary_rows(batch, encoders))
                    for batch in sample.to_batches(max_chunksize=_BINARY_BLOCK_ROWS)
                ]
                if encoders
                else []
            )

            def copy(table: str) -> None:  # the loader's path
                conn.insert_arrow("raw", table, sample)

            def copy_csv(table: str) -> None:  # the loader's path before binary COPY
                with conn.raw.cursor() as cur:
                    _copy_csv(cur, qualified("raw", table), names, sample, 200_000)

            def executemany(table: str) -> None:
                with conn.raw.cursor() as cur:
                    cur.executemany(f"INSERT INTO raw.{table} ({names}) VALUES ({marks})", rows)

            def copy_preencoded(table: str) -> None:
                sql = f"COPY raw.{table} ({names}) FROM STDIN (FORMAT binary)"
                with conn.raw.cursor() as cur, cur.copy(sql) as copy:
                    for block in [_PGCOPY_HEADER, *blocks, _PGCOPY_TRAILER]:
                        copy.write(block)

            ways = {"copy": copy, "copy_csv": copy_csv, "executemany": executemany}
            if encoders:
                ways["copy_preencoded"] = copy_preencoded
            else:
                del runs["copy_preencoded"]
            for i in range(repeat):
                for way, load in ways.items():
                    # each way in its own transaction, COMMIT inside the timing
                    start = time.perf_counter()
                    with conn.raw.transaction():
                        load(f"{way}_{i}")
                    runs[way].append(time.perf_counter() - start)
            row_s = None
            if per_row:

                def execute_per_row() -> None:
                    with conn.raw.transaction(), conn.raw.cursor() as cur:
                        for row in rows:
                            cur.execute(f"INSERT INTO raw.row_t ({names}) VALUES ({marks})", row)

                conn.ensure_table("raw", "row_t", cols)
                row_s, _ = timed(execute_per_row)
            counts = [
                conn.fetchone(f"SELECT count(*) FROM raw.{way}_{i}")[0]
                for way in runs
                for i in range(repeat)
            ]
            # every way loaded the same rows: no row of one table is missing from another
            differ = conn.fetchone(
                "SELECT (SELECT count(*) FROM (SELECT * FROM raw.copy_0 EXCEPT ALL "
                "SELECT * FROM raw.executemany_0) a), (SELECT count(*) FROM (SELECT * FROM "
                "raw.executemany_0 EXCEPT ALL SELECT * FROM raw.copy_0) b), (SELECT count(*) FROM "
                "(SELECT * FROM raw.copy_csv_0 EXCEPT ALL SELECT * FROM raw.copy_0) c)"
            )
        assert counts == [n] * len(counts), counts
        assert differ == (0, 0, 0), differ
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    copy_s = statistics.median(runs["copy"])
    csv_s = statistics.median(runs["copy_csv"])
    many_s = statistics.median(runs["executemany"])
    pre_s = statistics.median(runs["copy_preencoded"]) if encoders else None
    out: dict[str, Any] = {
        "rows": n,
        "repeat": repeat,
        "copy_format": "binary" if encoders else "csv",
        "copy_s": round(copy_s, 4),
        "copy_csv_s": round(csv_s, 4),
        "copy_preencoded_s": None if pre_s is None else round(pre_s, 4),
        "executemany_s": round(many_s, 3),
        "execute_per_row_s": None if row_s is None else round(row_s, 3),
        "runs_s": {way: [round(t, 4) for t in ts] for way, ts in runs.items()},
        "ratio_executemany_to_copy": round(many_s / copy_s, 1),
        "ratio_executemany_to_copy_csv": round(many_s / csv_s, 1),
        "ratio_executemany_to_copy_preencoded": None if pre_s is None else round(many_s / pre_s, 1),
        "ratio_execute_per_row_to_copy": None if row_s is None else round(row_s / copy_s, 1),
        "tables_identical": True,
        "target": "issue 3: COPY >= 20 x faster than psycopg 3 executemany on the same rows",
        "target_copy_20x_faster": many_s >= 20 * copy_s,
    }
    if row_s is not None:
        out["copy_20x_faster_than_per_row_execute"] = row_s >= 20 * copy_s
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--chunk-rows", type=int, default=200_000)
    ap.add_argument(
        "--pg-rows",
        "--sample-rows",
        type=int,
        default=50_000,
        help="rows for COPY vs executemany (independent of --rows)",
    )
    ap.add_argument("--pg-repeat", type=int, default=3, help="runs of each PostgreSQL way")
    ap.add_argument("--no-per-row", action="store_true", help="skip one execute per row")
    ap.add_argument(
        "--pg",
        default=os.environ.get(
            "METERLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        gen_s, _ = timed(lambda: write_parquet(work / "usage", args.rows, args.files))
        glob = str(work / "usage" / "*.parquet")
        out: dict[str, Any] = {
            "rows": args.rows,
            "files": args.files,
            "chunk_rows": args.chunk_rows,
            "cpus": os.cpu_count(),
            "generate_s": round(gen_s, 2),
        }
        out["duckdb"] = bench_duckdb(work, glob, args.rows, args.chunk_rows)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        if not args.no_pg:
            out["postgres"] = bench_postgres(
                args.pg, args.pg_rows, args.pg_repeat, not args.no_per_row
            )
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
