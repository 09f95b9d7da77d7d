"""meterline.dbt: dbt runs without writing its JSON artifacts (≈ 2 s a build), and meterline's
own run summary says which nodes ran, how long each took and what failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meterline.config import load_config
from meterline.dbt import RUN_SUMMARY, run_dbt


@pytest.mark.slow
def test_the_run_summary_replaces_dbts_artifacts(tmp_path: Path) -> None:
    (tmp_path / "meterline.toml").write_text(
        '[warehouse]\nurl = "duckdb:///.meterline/warehouse.duckdb"\n', encoding="utf-8")
    cfg = load_config(tmp_path / "meterline.toml", env={})
    target = cfg.state_dir / "dbt" / "target"

    ok = run_dbt(cfg, "build", extra=["--select", "currencies", "categories",
                                          "--indirect-selection", "cautious"])
    assert ok.success, ok.failures
    summary = json.loads((target / RUN_SUMMARY).read_text(encoding="utf-8"))
    assert summary["command"] == "build" and summary["success"] is True
    status = {r["unique_id"]: r["status"] for r in summary["results"]}
    assert status["seed.meterline.currencies"] == status["seed.meterline.categories"] == "success"
    assert [v for k, v in status.items()
            if k.startswith("test.meterline.not_null_categories_category.")] == ["pass"]
    assert set(status.values()) == {"success", "pass"} and len(status) == ok.nodes
    assert all(r["execution_time"] > 0 for r in summary["results"] if r["unique_id"][:4] == "seed")
    assert summary["elapsed_time"] >= max(r["execution_time"] for r in summary["results"])
    # dbt's own JSON artifacts are not written; its partial-parse cache is
    assert not {"manifest.json", "run_results.json", "semantic_manifest.json"} & {
        p.name for p in target.iterdir()}
    assert (target / "partial_parse.msgpack").exists()

    # a model over a raw table that does not exist: the failure is in the summary too
    bad = run_dbt(cfg, "build", extra=["--select", "stg_metering__usage_hourly",
                                           "--indirect-selection", "cautious"])
    assert not bad.success
    summary = json.loads((target / RUN_SUMMARY).read_text(encoding="utf-8"))
    assert summary["success"] is False
    assert {r["unique_id"]: r["status"] for r in summary["results"]}[
        "model.meterline.stg_metering__usage_hourly"] == "error"
    assert any("stg_metering__usage_hourly" in f for f in bad.failures)
