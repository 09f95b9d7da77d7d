"""The benchmark harness works end to end at 1M rows, the smoke test the issue asks of CI
(PostgreSQL included): every measurement
and every target is in the JSON with a measured ratio and a holds flag, and the pandas rating
equals meterline's on every row. No timing assertions: numbers live in bench/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PG_ADMIN_URL, unavailable

from bench.harness import run_bench

MEASUREMENTS = [
    "floor_f0_sum", "floor_f1_group_by", "ingest", "rating_models", "dbt_build", "reconcile",
    "checks_gx", "checks_sql", "exports", "pandas_rating", "sql_rating", "nightly_full",
    "nightly_incremental", "dbt_fixed_overhead", "postgres_nightly",
]
TARGETS = [
    "dbt_build_le_3x_f1", "nightly_le_5x_f1", "duckdb_10x_faster_than_pandas",
    "incremental_le_0_1x_full", "300m_under_4gib", "gx_le_2x_sql", "dbt_overhead_le_15s",
]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(1200)
def test_smoke_bench(tmp_path: Path) -> None:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    out = run_bench("1m", tmp_path / "results", postgres=True, work_dir=tmp_path,
                    pg_admin_url=PG_ADMIN_URL)

    saved = json.loads(Path(out["files"]["json"]).read_text(encoding="utf-8"))
    assert saved["size"] == "1m" and saved["world"]["rows"] >= 1_000_000
    assert "## Targets" in Path(out["files"]["md"]).read_text(encoding="utf-8")
    assert saved["machine"]["cpus"] and saved["machine"]["memory_gib"]
    m = saved["measurements"]
    assert sorted(m) == sorted(MEASUREMENTS), saved["notes"]
    for key in MEASUREMENTS:
        assert m[key]["ok"], (key, m[key])
        for field in ("work_s", "wall_s", "peak_rss_mb"):
            assert isinstance(m[key][field], float | int) and m[key][field] > 0, (key, field)
    for key in ("nightly_full", "nightly_incremental", "postgres_nightly"):
        assert set(m[key]["phases"]) == {"ingest", "dbt_build", "reconcile"}, key

    targets = {t["id"]: t for t in saved["targets"]}
    assert sorted(targets) == sorted(TARGETS)
    for t in targets.values():
        assert isinstance(t["measured_ratio"], float | int) and t["measured_ratio"] > 0, t
        assert isinstance(t["holds"], bool), t

    checks = saved["checks"]
    pandas = checks["pandas_equals_meterline"]
    assert pandas["equal"] and pandas["rows"] > 0, pandas
    for currency, totals in pandas["totals_minor_by_currency"].items():
        assert totals["meterline"] == totals["other"], currency
        # the usage lines on the invoices add up to the same rated amounts
        assert pandas["invoice_usage_lines"][currency]["amount_minor"] == totals["meterline"]
    assert checks["sql_rating_equals_meterline"]["equal"]
    assert checks["postgres_equals_duckdb"]["equal"]
    assert checks["incremental_equals_full"]["identical"], checks["incremental_equals_full"]
    assert checks["gx_equals_sql"]["same"], checks["gx_equals_sql"]
    assert all(v == "passed" for v in checks["gx_equals_sql"]["gx"].values())

