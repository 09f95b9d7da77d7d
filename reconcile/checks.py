"""Reconciliation checks: Great Expectations 1.x suites over the reconciliation marts.

dbt computes each reconciliation row's status (the business rule); this module builds the GX
expectation suites in code (versioned with the project), runs one GX checkpoint per suite each
night in the GX project under `[reconcile] gx_dir`, records every check's result in the
warehouse history (`ledger.recon_check_results`: run, check, suite, outcome, observed value,
affected rows) and the findings (`ledger.recon_findings`), and renders GX Data Docs (HTML).

The suites:
  status_<check>     every row of the check's mart is in an OK status (matched, within_tolerance,
                     late_pending, explained) - one per rec_* mart
  usage_tolerance    per data category, no compared usage pair (day or period grain) differs by
                     more than the category's tolerance (absolute OR relative, [reconcile] in
                     meterline.toml), except rows still late_pending or explained
  completeness       every hour of the window is covered by a loaded batch of each source
  freshness          each source's newest data lags as_of by at most freshness_max_hours
  duplicates         no natural key twice in the layers that promise one row per key
  row_counts         each layer holds exactly the rows the layer before it handed over

GX validates small frames computed in SQL (status counts, differences, keys seen twice), so the
cost does not grow with the warehouse. A check that raised is an *error*: never reported as a pass
and never as a drift (GX reports `success=False` with an exception: that is told apart here).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from meterline.ledger import loaded_through
from meterline.warehouse import Connection, qualified

MARTS_SCHEMA = "marts"
LEDGER_SCHEMA = "ledger"
OK_STATUSES = ["matched", "within_tolerance", "late_pending", "explained"]

# check name -> reconciliation mart (each has a status column and one status check)
CHECKS: dict[str, str] = {
    "usage_daily": "rec_usage_daily",
    "usage_period": "rec_usage_period",
    "invoice_totals": "rec_invoice_totals",
    "invoice_lines": "rec_invoice_lines",
    "payments": "rec_payments",
    "balance_transactions": "rec_balance_transactions",
    "issued_vs_current": "rec_issued_vs_current",
    "completeness": "rec_source_completeness",
    "freshness": "rec_source_freshness",
    "row_counts": "rec_layer_row_counts",
}
# the checks `meterline explain` can cover (rec_findings' check names with key fields)
EXPLAINABLE = ["usage_daily", "usage_period", "invoice_totals", "invoice_lines", "payments",
               "balance_transactions", "issued_vs_current"]
KEY_FIELDS = ("account_id", "category", "period", "day", "object_id", "reason")

# relation -> natural key columns that must be unique in it
UNIQUE_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("intermediate", "int_metering_usage_current"): ("hour_start", "account_id", "project_id", "category", "outcome"),
    ("intermediate", "int_billing_usage_counters_latest"): ("account_id", "category", "usage_day"),
    ("intermediate", "int_stripe_invoices_latest"): ("invoice_id",),
    ("intermediate", "int_stripe_charges_latest"): ("charge_id",),
    ("intermediate", "int_stripe_refunds_latest"): ("refund_id",),
    ("staging", "stg_stripe__balance_transactions"): ("balance_transaction_id",),
    ("staging", "stg_stripe__payouts"): ("payout_id",),
    ("marts", "fct_invoices"): ("invoice_id",),
    ("marts", "fct_invoice_lines"): ("invoice_line_id",),
    ("marts", "fct_journal_lines"): ("journal_line_id",),
}


@dataclass
class CheckOutcome:
    check_name: str
    outcome: str  # passed | failed | error
    observed_rows: int
    unexpected_rows: int
    detail: str = ""
    suite: str = ""
    observed_value: str = ""


@dataclass
class ReconcileResult:
    as_of: dt.datetime
    checks: list[CheckOutcome]
    findings: list[dict[str, Any]] = field(default_factory=list)
    data_docs: str | None = None

    @property
    def errors(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.outcome == "error"]

    @property
    def drift(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["check_name"] != "quarantine"]

    @property
    def quarantined(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["check_name"] == "quarantine"]


@dataclass
class Suite:
    """One GX suite: the SQL of the frame it validates, its expectations (built from the frame
    and the tolerances), and how many warehouse rows a failure affects (from the frame)."""

    name: str
    sql: str
    expectations: Callable[[Any], list[Any]]
    affected: Callable[[Any], int]
    observed: Callable[[Any], str]
    params: list[Any] = field(default_factory=list)


def _raised(info: Any) -> str | None:
    """GX puts exceptions at the top level or keyed by metric: find any raised one."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "exception")
    for value in info.values():
        msg = _raised(value)
        if msg:
            return msg
    return None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def build_suites(tolerance: Callable[[str], tuple[int, Decimal]], freshness_max_hours: int) -> list[Suite]:
    """Every suite of the nightly checkpoint. `tolerance(category)` gives (abs, rel)."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    m = lambda t: qualified(MARTS_SCHEMA, t)  # noqa: E731
    suites: list[Suite] = []
    for check, mart in CHECKS.items():
        suites.append(Suite(
            name=f"status_{check}",
            sql=f"SELECT status, count(*) AS n FROM {m(mart)} GROUP BY status ORDER BY status",
            expectations=lambda _f: [
                gxe.ExpectColumnValuesToNotBeNull(column="status"),
                gxe.ExpectColumnValuesToBeInSet(column="status", value_set=OK_STATUSES)],
            affected=lambda f: int(f.loc[~f["status"].isin(OK_STATUSES), "n"].sum()),
            observed=lambda f: _json({str(r.status): int(r.n) for r in f.itertuples()}),
        ))

    def tolerance_expectations(frame: Any) -> list[Any]:
        out = []
        for category in sorted(set(frame["category"])):
            tol_abs, tol_rel = tolerance(category)
            # beyond the relative tolerance, the absolute one must hold (abs OR rel)
            out.append(gxe.ExpectColumnValuesToBeBetween(
                column="abs_diff", min_value=0, max_value=tol_abs,
                row_condition=(Column("category") == category) & (Column("rel_diff") > tol_rel),
                meta={"category": category, "tolerance_abs": tol_abs, "tolerance_rel": str(tol_rel)}))
        return out or [gxe.ExpectTableRowCountToBeBetween(min_value=0)]

    def beyond(frame: Any) -> int:
        n = 0
        for r in frame.itertuples():
            tol_abs, tol_rel = tolerance(r.category)
            n += int(r.abs_diff > tol_abs and r.rel_diff > tol_rel)
        return n

    suites.append(Suite(
        name="usage_tolerance",
        # only the pairs that differ at all (both sides present), not waiting on late data, not explained
        sql=f"SELECT 'day' AS grain, category, abs_diff, rel_diff FROM {m('rec_usage_daily')} "
            f"WHERE metering_quantity IS NOT NULL AND billing_quantity IS NOT NULL AND abs_diff > 0 "
            f"AND status NOT IN ('late_pending', 'explained') "
            f"UNION ALL SELECT 'period' AS grain, category, metering_billing_abs_diff AS abs_diff, "
            f"metering_billing_rel_diff AS rel_diff FROM {m('rec_usage_period')} "
            f"WHERE metering_billing_abs_diff > 0 AND status NOT IN ('late_pending', 'explained') "
            f"ORDER BY grain, category, abs_diff",
        expectations=tolerance_expectations,
        affected=beyond,
        observed=lambda f: _json({"compared_pairs_with_a_difference": len(f), "beyond_tolerance": beyond(f)}),
    ))
    suites.append(Suite(
        name="completeness",
        sql=f"SELECT source_name, hour_start, covering_batches FROM {m('rec_source_completeness')} "
            "ORDER BY source_name, hour_start",
        expectations=lambda _f: [gxe.ExpectColumnValuesToBeBetween(column="covering_batches", min_value=1)],
        affected=lambda f: int((f["covering_batches"] < 1).sum()),
        observed=lambda f: _json({str(s): int((g["covering_batches"] < 1).sum())
                                  for s, g in f.groupby("source_name")}),
    ))
    suites.append(Suite(
        name="freshness",
        sql=f"SELECT source_name, newest_data_at, lag_hours FROM {m('rec_source_freshness')} ORDER BY source_name",
        expectations=lambda _f: [
            gxe.ExpectColumnValuesToNotBeNull(column="newest_data_at"),
            gxe.ExpectColumnValuesToBeBetween(column="lag_hours", max_value=freshness_max_hours)],
        affected=lambda f: int(((f["lag_hours"] > freshness_max_hours) | f["newest_data_at"].isna()).sum()),
        observed=lambda f: _json({str(r.source_name): None if r.lag_hours is None else int(r.lag_hours)
                                  for r in f.itertuples()}),
    ))
    dup_sql = " UNION ALL ".join(
        f"SELECT '{schema}.{table}' AS relation, (SELECT count(*) FROM (SELECT {', '.join(cols)} "
        f"FROM {qualified(schema, table)} GROUP BY {', '.join(cols)} HAVING count(*) > 1) AS d) AS duplicate_keys"
        for (schema, table), cols in UNIQUE_KEYS.items())
    suites.append(Suite(
        name="duplicates",
        sql=f"SELECT relation, duplicate_keys FROM ({dup_sql}) AS u ORDER BY relation",
        expectations=lambda _f: [gxe.ExpectColumnValuesToBeBetween(column="duplicate_keys", max_value=0)],
        affected=lambda f: int(f["duplicate_keys"].sum()),
        observed=lambda f: _json({str(r.relation): int(r.duplicate_keys) for r in f.itertuples()}),
    ))
    suites.append(Suite(
        name="row_counts",
        sql=f"SELECT layer_pair_id, upstream_rows, downstream_rows FROM {m('rec_layer_row_counts')} "
            "ORDER BY layer_pair_id",
        expectations=lambda _f: [gxe.ExpectColumnPairValuesToBeEqual(column_A="upstream_rows",
                                                                      column_B="downstream_rows")],
        affected=lambda f: int((f["upstream_rows"] - f["downstream_rows"]).abs().sum()),
        observed=lambda f: _json({str(r.layer_pair_id): [int(r.upstream_rows), int(r.downstream_rows)]
                                  for r in f.itertuples()}),
    ))
    return suites


def _quiet_gx() -> None:
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _context(gx_dir: Path | None) -> Any:
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral") if gx_dir is None else gx.get_context(
        mode="file", project_root_dir=str(gx_dir))
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return ctx


def run_suites(frames: dict[str, Any], suites: list[Suite], as_of: dt.datetime,
               gx_dir: Path | None = None) -> tuple[list[CheckOutcome], str | None]:
    """Run each suite's checkpoint on its frame; render Data Docs when `gx_dir` is given. Return
    the outcomes and the Data Docs index path. A suite whose frame could not be read (its entry in
    `frames` is an Exception) or whose validation raised is an error."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    _quiet_gx()
    ctx = _context(gx_dir)
    source = ctx.data_sources.add_or_update_pandas("meterline_reconciliation")
    run_id = RunIdentifier(run_name=f"nightly {as_of.isoformat()}", run_time=as_of.replace(tzinfo=dt.UTC))
    outcomes: list[CheckOutcome] = []
    for suite in suites:
        frame = frames.get(suite.name)
        if isinstance(frame, BaseException) or frame is None:
            outcomes.append(CheckOutcome(suite.name, "error", 0, 0, f"frame: {frame!r}", suite=suite.name))
            continue
        try:
            try:
                asset = source.get_asset(suite.name)
            except (LookupError, ValueError, KeyError):
                asset = source.add_dataframe_asset(suite.name)
            try:
                batch_def = asset.get_batch_definition("whole_frame")
            except (LookupError, ValueError, KeyError):
                batch_def = asset.add_batch_definition_whole_dataframe("whole_frame")
            gx_suite = ctx.suites.add_or_update(gx.ExpectationSuite(
                name=f"meterline_{suite.name}", expectations=suite.expectations(frame)))
            vd = ctx.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=f"meterline_{suite.name}", data=batch_def, suite=gx_suite))
            checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
                name=f"meterline_nightly_{suite.name}", validation_definitions=[vd], result_format="SUMMARY"))
            result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
            res = next(iter(result.run_results.values()))
        except Exception as exc:  # noqa: BLE001 - an error is an error, not a drift
            outcomes.append(CheckOutcome(suite.name, "error", len(frame), 0, f"{type(exc).__name__}: {exc}",
                                         suite=suite.name))
            continue
        errors = [msg for r in res.results if (msg := _raised(r.exception_info))]
        if errors:
            outcomes.append(CheckOutcome(suite.name, "error", len(frame), 0, errors[0], suite=suite.name))
            continue
        outcomes.append(CheckOutcome(
            suite.name, "passed" if res.success else "failed", len(frame),
            suite.affected(frame) if not res.success else 0, suite=suite.name,
            observed_value=suite.observed(frame)))
    docs = None
    if gx_dir is not None:
        try:
            ctx.build_data_docs()
            index = Path(gx_dir) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
            docs = str(index) if index.exists() else None
        except Exception as exc:  # noqa: BLE001 - the checks stand; the HTML is a view of them
            logging.getLogger(__name__).warning("GX Data Docs not rendered: %s", exc)
    return outcomes, docs


def read_frames(conn: Connection, suites: list[Suite]) -> dict[str, Any]:
    """Each suite's frame from the warehouse; a query that fails is kept as its exception."""
    import pandas as pd

    frames: dict[str, Any] = {}
    for suite in suites:
        try:
            rows = conn.fetch_dicts(suite.sql, suite.params)
            frames[suite.name] = pd.DataFrame(rows) if rows else pd.DataFrame(columns=_columns(suite.sql))
        except Exception as exc:  # noqa: BLE001 - reported as the suite's error
            frames[suite.name] = exc
    return frames


def _columns(sql: str) -> list[str]:
    head = sql.split(" FROM ", 1)[0].removeprefix("SELECT ")
    return [c.strip().split(" AS ")[-1].split(".")[-1] for c in head.split(",")]


def reconcile(conn: Connection, tolerance: Callable[[str], tuple[int, Decimal]] | None = None,
              freshness_max_hours: int = 36, gx_dir: Path | None = None) -> ReconcileResult:
    """Run every suite for the current `as_of` and replace that as_of's results in the ledger."""
    as_of = loaded_through(conn, ["metering"])
    if as_of is None:
        raise ValueError("nothing ingested yet")
    suites = build_suites(tolerance or (lambda _c: (0, Decimal("0.001"))), freshness_max_hours)
    frames = read_frames(conn, suites)
    checks, docs = run_suites(frames, suites, as_of, gx_dir)
    cols = ", ".join(["check_name", "status", *KEY_FIELDS, "detail", "difference", "unit"])
    findings = conn.fetch_dicts(
        f"SELECT {cols} FROM {qualified(MARTS_SCHEMA, 'rec_findings')} "
        f"ORDER BY {cols}"
    )
    for f in findings:
        for k in ("day",):
            if f.get(k) is not None:
                f[k] = str(f[k])
    run_id = f"recon|{as_of.isoformat()}"
    with conn.transaction():
        conn.execute(f"DELETE FROM {qualified(LEDGER_SCHEMA, 'recon_check_results')} WHERE as_of = ?", [as_of])
        conn.execute(f"DELETE FROM {qualified(LEDGER_SCHEMA, 'recon_findings')} WHERE as_of = ?", [as_of])
        for c in checks:
            conn.execute(
                f"INSERT INTO {qualified(LEDGER_SCHEMA, 'recon_check_results')} "
                "(as_of, check_name, outcome, observed_rows, unexpected_rows, detail, run_id, suite, observed_value) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [as_of, c.check_name, c.outcome, c.observed_rows, c.unexpected_rows, c.detail, run_id,
                 c.suite, c.observed_value],
            )
        if findings:
            import pyarrow as pa

            conn.insert_arrow(
                LEDGER_SCHEMA,
                "recon_findings",
                pa.Table.from_pylist([{"as_of": as_of, **f} for f in findings]),
            )
    return ReconcileResult(as_of=as_of, checks=checks, findings=findings, data_docs=docs)


def finding_key(f: dict[str, Any]) -> tuple:
    """A finding's identity: check, status and its non-null key fields."""
    return (f["check_name"] if "check_name" in f else f["check"], f["status"],
            tuple((k, str(f[k])) for k in KEY_FIELDS if f.get(k) is not None))


def compare_with_manifest(findings: list[dict[str, Any]], manifest: dict[str, Any]) -> dict[str, Any]:
    """Planted discrepancies found, and findings no plant explains (false positives)."""
    found_keys = {finding_key(f) for f in findings}
    expected_keys: set[tuple] = set()
    found, missed = [], []
    for d in manifest.get("discrepancies", []):
        keys = {finding_key(e) for e in d["expected"]}
        expected_keys |= keys
        (found if keys <= found_keys else missed).append(d["id"])
    false_positives = [f for f in findings if finding_key(f) not in expected_keys]
    return {
        "planted": len(manifest.get("discrepancies", [])),
        "found": len(found),
        "missed": missed,
        "false_positives": false_positives,
    }
