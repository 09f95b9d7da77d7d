"""The ingest bench runs (tiny size; no timing assertions — numbers live in bench/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ingest_bench import main


def test_bench_runs_duckdb(tmp_path: Path) -> None:
    out = main(["--rows", "10000", "--files", "2", "--no-pg", "--dir", str(tmp_path)])
    assert out["duckdb"]["rows_per_s"] > 0
    assert isinstance(out["duckdb"]["target_load_within_2x_bare_count"], bool)


@pytest.mark.postgres
def test_bench_runs_postgres(tmp_path: Path, pg_url: str) -> None:
    args = "--rows 1000 --files 2 --pg-rows 3000 --pg-repeat 1".split()
    out = main([*args, "--pg", pg_url, "--dir", str(tmp_path)])
    pg = out["postgres"]
    assert pg["rows"] == 3000  # independent of --rows
    assert pg["copy_format"] == "binary"  # the metering rows take the binary COPY path
    assert pg["tables_identical"] is True  # COPY, CSV COPY and executemany loaded the same rows
    assert isinstance(pg["target_copy_20x_faster"], bool)
