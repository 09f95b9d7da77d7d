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
    out = main(["--rows", "10000", "--files", "2", "--sample-rows", "500", "--pg", pg_url,
                "--dir", str(tmp_path)])
    assert out["postgres"]["sample_rows"] == 500
