"""Reconciliation checks: Great Expectations suites over the reconciliation marts.

dbt computes each reconciliation row's status (the business rule); this module asks Great
Expectations whether every row of every reconciliation mart is in an acceptable status, records
the outcome per check (passed / failed / error) and the findings, and returns them. A check
that raised is an *error*: never reported as a pass and never as a drift.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from meterline.ledger import loaded_through
from meterline.warehouse import Connection, qualified

MARTS_SCHEMA = "marts"
LEDGER_SCHEMA = "ledger"
OK_STATUSES = ["matched", "within_tolerance", "late_pending", "explained"]

# check name -> reconciliation mart
CHECKS: dict[str, str] = {
    "usage_daily": "rec_usage_daily",
    "invoice_totals": "rec_invoice_totals",
    "invoice_lines": "rec_invoice_lines",
    "payments": "rec_payments",
    "issued_vs_current": "rec_issued_vs_current",
}
KEY_FIELDS = ("account_id", "category", "period", "day", "object_id", "reason")


@dataclass
class CheckOutcome:
    check_name: str
    outcome: str  # passed | failed | error
    observed_rows: int
    unexpected_rows: int
    detail: str = ""


@dataclass
class ReconcileResult:
    as_of: dt.datetime
    checks: list[CheckOutcome]
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.outcome == "error"]

    @property
    def drift(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["check_name"] != "quarantine"]

    @property
    def quarantined(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["check_name"] == "quarantine"]


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


def run_suite(frames: dict[str, Any]) -> list[CheckOutcome]:
    """Validate each mart's frame with GX: every row's status must be an OK status."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)

    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    source = ctx.data_sources.add_pandas("reconciliation")
    outcomes = []
    for check, frame in frames.items():
        asset = source.add_dataframe_asset(check)
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": frame}
        )
        suite = gx.ExpectationSuite(f"meterline_{check}")
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="status"))
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="status", value_set=OK_STATUSES))
        try:
            res = batch.validate(suite, result_format="SUMMARY")
        except Exception as exc:  # noqa: BLE001 - an error is an error, not a drift
            outcomes.append(CheckOutcome(check, "error", len(frame), 0, f"{type(exc).__name__}: {exc}"))
            continue
        errors = [m for r in res.results if (m := _raised(r.exception_info))]
        unexpected = max((r.result or {}).get("unexpected_count") or 0 for r in res.results)
        if errors:
            outcomes.append(CheckOutcome(check, "error", len(frame), 0, errors[0]))
        else:
            outcomes.append(
                CheckOutcome(check, "passed" if res.success else "failed", len(frame), int(unexpected))
            )
    return outcomes


def reconcile(conn: Connection) -> ReconcileResult:
    """Run every check for the current `as_of` and replace that as_of's results in the ledger."""
    import pandas as pd

    as_of = loaded_through(conn, ["metering"])
    if as_of is None:
        raise ValueError("nothing ingested yet")
    frames = {}
    for check, mart in CHECKS.items():
        rows = conn.fetch_dicts(f"SELECT status FROM {qualified(MARTS_SCHEMA, mart)}")
        frames[check] = pd.DataFrame(rows, columns=["status"]).astype({"status": "object"})
    checks = run_suite(frames)
    cols = ", ".join(["check_name", "status", *KEY_FIELDS, "detail"])
    findings = conn.fetch_dicts(
        f"SELECT {cols} FROM {qualified(MARTS_SCHEMA, 'rec_findings')} "
        f"ORDER BY {cols}"
    )
    for f in findings:
        for k in ("day",):
            if f.get(k) is not None:
                f[k] = str(f[k])
    with conn.transaction():
        conn.execute(f"DELETE FROM {qualified(LEDGER_SCHEMA, 'recon_check_results')} WHERE as_of = ?", [as_of])
        conn.execute(f"DELETE FROM {qualified(LEDGER_SCHEMA, 'recon_findings')} WHERE as_of = ?", [as_of])
        for c in checks:
            conn.execute(
                f"INSERT INTO {qualified(LEDGER_SCHEMA, 'recon_check_results')} "
                "(as_of, check_name, outcome, observed_rows, unexpected_rows, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [as_of, c.check_name, c.outcome, c.observed_rows, c.unexpected_rows, c.detail],
            )
        if findings:
            import pyarrow as pa

            conn.insert_arrow(
                LEDGER_SCHEMA,
                "recon_findings",
                pa.Table.from_pylist([{"as_of": as_of, **f} for f in findings]),
            )
    return ReconcileResult(as_of=as_of, checks=checks, findings=findings)


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
