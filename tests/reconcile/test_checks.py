"""The GX suites of the nightly checkpoint, on frames made by hand: tolerances per category from
config, the outcome of each suite (passed / failed / error - an error is never a pass or a drift),
and the Data Docs HTML."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from reconcile.checks import OK_STATUSES, build_suites, run_suites

AS_OF = dt.datetime(2026, 11, 4)


def _tolerances(category: str) -> tuple[int, Decimal]:
    # api_calls tolerates 10 units or 1%, every other category 0 units or 0.1%
    return (10, Decimal("0.01")) if category == "api_calls" else (0, Decimal("0.001"))


def _suites(*names: str):
    suites = {s.name: s for s in build_suites(_tolerances, freshness_max_hours=36)}
    return [suites[n] for n in names]


def _usage_frame(rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"grain": "day", "category": c, "abs_diff": a, "rel_diff": Decimal(r)}
                         for c, a, r in rows])


def _run(frames: dict, *names: str, gx_dir: Path | None = None):
    outcomes, docs = run_suites(frames, _suites(*names), AS_OF, gx_dir)
    return {o.check_name: o for o in outcomes}, docs


@pytest.mark.parametrize(("rows", "outcome", "affected"), [
    # api_calls: 12 units is beyond 10, but 0.5% is within 1%: within tolerance
    ([("api_calls", 12, "0.005")], "passed", 0),
    # api_calls: 12 units and 2%: beyond both
    ([("api_calls", 12, "0.02")], "failed", 1),
    # bytes (defaults): 1 unit and 0.05%: within 0.1%
    ([("bytes", 1, "0.0005")], "passed", 0),
    # bytes: 1 unit and 0.2%: the api_calls tolerance would accept it, the default does not
    ([("bytes", 1, "0.002"), ("api_calls", 1, "0.002")], "failed", 1),
    # exactly on the relative tolerance is within it
    ([("bytes", 5, "0.001")], "passed", 0),
])
def test_usage_tolerance_is_per_category(rows, outcome, affected) -> None:
    got, _ = _run({"usage_tolerance": _usage_frame(rows)}, "usage_tolerance")
    assert (got["usage_tolerance"].outcome, got["usage_tolerance"].unexpected_rows) == (outcome, affected)


def test_status_suite_counts_the_rows_that_are_not_ok() -> None:
    frame = pd.DataFrame({"status": ["matched", "drift", "explained", "missing_in_stripe"], "n": [90, 3, 2, 1]})
    got, _ = _run({"status_usage_daily": frame}, "status_usage_daily")
    o = got["status_usage_daily"]
    assert (o.outcome, o.unexpected_rows) == ("failed", 4)
    assert '"drift": 3' in o.observed_value
    ok = pd.DataFrame({"status": OK_STATUSES, "n": [5, 4, 3, 2]})
    got, _ = _run({"status_usage_daily": ok}, "status_usage_daily")
    assert (got["status_usage_daily"].outcome, got["status_usage_daily"].unexpected_rows) == ("passed", 0)


def test_freshness_completeness_duplicates_and_row_counts() -> None:
    frames = {
        "freshness": pd.DataFrame({"source_name": ["billing", "metering", "stripe"],
                                   "newest_data_at": [AS_OF, AS_OF, AS_OF - dt.timedelta(hours=40)],
                                   "lag_hours": [0, 0, 40]}),
        "completeness": pd.DataFrame({"source_name": ["stripe"] * 3,
                                      "hour_start": [AS_OF - dt.timedelta(hours=h) for h in (3, 2, 1)],
                                      "covering_batches": [1, 0, 2]}),
        "duplicates": pd.DataFrame({"relation": ["marts.fct_invoices", "staging.x"], "duplicate_keys": [0, 0]}),
        "row_counts": pd.DataFrame({"layer_pair_id": ["metering|raw|staging"], "upstream_rows": [10],
                                    "downstream_rows": [9]}),
    }
    got, _ = _run(frames, "freshness", "completeness", "duplicates", "row_counts")
    assert {k: (o.outcome, o.unexpected_rows) for k, o in got.items()} == {
        "freshness": ("failed", 1), "completeness": ("failed", 1), "duplicates": ("passed", 0),
        "row_counts": ("failed", 1)}
    assert '"stripe": 40' in got["freshness"].observed_value


def test_an_exception_is_an_error_never_a_pass_or_a_drift() -> None:
    # a frame without the column the suite checks: GX raises inside the metric and reports
    # success=False with the exception - that is an error
    broken = pd.DataFrame({"not_status": ["drift"], "n": [1]})
    got, _ = _run({"status_payments": broken, "freshness": RuntimeError("relation does not exist")},
                  "status_payments", "freshness")
    assert got["status_payments"].outcome == "error"
    assert "status" in got["status_payments"].detail
    assert got["freshness"].outcome == "error" and "relation does not exist" in got["freshness"].detail
    # and the same suite on a good frame is a plain failure
    got, _ = _run({"status_payments": pd.DataFrame({"status": ["drift"], "n": [1]})}, "status_payments")
    assert got["status_payments"].outcome == "failed"


def test_data_docs_are_rendered(tmp_path: Path) -> None:
    frame = _usage_frame([("api_calls", 12, "0.02")])
    got, docs = _run({"usage_tolerance": frame}, "usage_tolerance", gx_dir=tmp_path / "gx")
    assert got["usage_tolerance"].outcome == "failed"
    assert docs is not None and Path(docs).is_file()
    pages = list((tmp_path / "gx").rglob("*.html"))
    assert any("meterline_usage_tolerance" in p.read_text(errors="replace") for p in pages)
    # the suite and the run are kept in the GX project, as code-built suites versioned by name
    assert any(p.name.startswith("meterline_usage_tolerance") for p in (tmp_path / "gx").rglob("*.json"))
