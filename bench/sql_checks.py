"""The reconciliation checks of `reconcile.checks` written as plain SQL: the GX baseline.

Each suite of `reconcile.checks.build_suites` becomes one query over the same marts that counts
the rows breaking the suite's expectations; a suite passes when that count is 0. Same marts,
same rules (OK statuses, per-category tolerance abs OR rel, completeness, freshness,
duplicate keys, row counts per layer), no Great Expectations: what an engineer would write by
hand. The harness runs both on the same warehouse and checks they agree on every suite.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from meterline.warehouse import Connection, qualified
from reconcile.checks import CHECKS, MARTS_SCHEMA, OK_STATUSES, UNIQUE_KEYS


def _m(table: str) -> str:
    return qualified(MARTS_SCHEMA, table)


def queries(tolerance: Callable[[str], tuple[int, Decimal]], categories: list[str],
            freshness_max_hours: int) -> dict[str, str]:
    """suite name -> SQL returning one row, one column: the number of offending rows."""
    ok = ", ".join(f"'{s}'" for s in OK_STATUSES)
    out = {
        f"status_{check}": f"SELECT count(*) FROM {_m(mart)} "
                           f"WHERE status IS NULL OR status NOT IN ({ok})"
        for check, mart in CHECKS.items()
    }
    # per-category tolerance: beyond the relative one, the absolute one must hold
    tol = " ".join(
        f"WHEN '{c}' THEN abs_diff > {a} AND rel_diff > {r}"
        for c in categories for a, r in [tolerance(c)])
    default_abs, default_rel = tolerance("")
    beyond = (f"CASE category {tol} ELSE abs_diff > {default_abs} AND rel_diff > {default_rel} END"
              if tol else f"abs_diff > {default_abs} AND rel_diff > {default_rel}")
    out["usage_tolerance"] = (
        f"SELECT count(*) FROM ("
        f"SELECT category, abs_diff, rel_diff FROM {_m('rec_usage_daily')} "
        f"WHERE metering_quantity IS NOT NULL AND billing_quantity IS NOT NULL AND abs_diff > 0 "
        f"AND status NOT IN ('late_pending', 'explained') "
        f"UNION ALL SELECT category, metering_billing_abs_diff, metering_billing_rel_diff "
        f"FROM {_m('rec_usage_period')} WHERE metering_billing_abs_diff > 0 "
        f"AND status NOT IN ('late_pending', 'explained')) AS pairs WHERE {beyond}")
    out["completeness"] = (f"SELECT count(*) FROM {_m('rec_source_completeness')} "
                           "WHERE covering_batches IS NULL OR covering_batches < 1")
    out["freshness"] = (f"SELECT count(*) FROM {_m('rec_source_freshness')} "
                        f"WHERE newest_data_at IS NULL OR lag_hours > {int(freshness_max_hours)}")
    out["duplicates"] = "SELECT " + " + ".join(
        f"(SELECT count(*) FROM (SELECT {', '.join(cols)} FROM {qualified(schema, table)} "
        f"GROUP BY {', '.join(cols)} HAVING count(*) > 1) AS d)"
        for (schema, table), cols in UNIQUE_KEYS.items())
    out["row_counts"] = (f"SELECT count(*) FROM {_m('rec_layer_row_counts')} "
                         "WHERE upstream_rows IS DISTINCT FROM downstream_rows")
    return out


def run(conn: Connection, tolerance: Callable[[str], tuple[int, Decimal]],
        categories: list[str], freshness_max_hours: int) -> dict[str, str]:
    """suite name -> passed | failed | error."""
    outcomes = {}
    for name, sql in queries(tolerance, categories, freshness_max_hours).items():
        try:
            row = conn.fetchone(sql)
            outcomes[name] = "passed" if row and int(row[0]) == 0 else "failed"
        except Exception:  # noqa: BLE001 - an error is an error, as in reconcile.checks
            outcomes[name] = "error"
    return outcomes
