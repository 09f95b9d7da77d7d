"""Read the finance marts (dbt_project/models/marts/finance/, plus the revenue and reconciliation
marts) into a `Report`: the daily flash for a day, the month-end pack for a billing month.

Every number in a report is the value of one column in one mart row, selected by its key; this
module selects rows and lays them out, it never adds, subtracts or divides figures (the SQL that
does lives in the fin_* models). A `Figure` records the mart, column and key of each headline
number, so the tests can tie the page back to the warehouse.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from exports.accounting import Money
from exports.columns import exported_columns, redact_detail
from exports.reports import charts
from exports.reports.model import (
    Bps,
    Card,
    Col,
    Figure,
    Report,
    ReportTable,
    Section,
    SourceRows,
    TableSource,
    compact_money,
    compact_number,
    exponents_for,
)
from meterline.errors import IntervalError, NoBillingPeriodError, StageError
from meterline.warehouse import Connection, qualified

MEASURES = (
    ("billed", "Billed"),
    ("collected", "Collected"),
    ("refunded", "Refunded"),
    ("revenue", "Net revenue"),
)
MOVEMENTS = (
    ("carried_in", "carried in"),
    ("new", "new"),
    ("expansion", "expansion"),
    ("reactivation", "reactivation"),
    ("contraction", "contraction"),
    ("churn", "churn"),
)
BUCKET_LABELS = {
    "current": "current (not yet due)",
    "1_30": "1–30 days past due",
    "31_60": "31–60 days past due",
    "61_90": "61–90 days past due",
    "91_plus": "over 90 days past due",
    "credit_balance": "credit balance (overpaid)",
}
EVENT_LABELS = {
    "refund": "refund",
    "dispute": "dispute",
    "failed_payment": "failed payment",
    "unpaid_invoice": "unpaid invoice",
    "total": "total at risk",
}
RISK_REASONS = {
    "uncollectible": "marked uncollectible",
    "failed_payment": "payment failed",
    "past_grace_days": "unpaid past the grace days",
    "open_dispute": "open dispute",
}
TOP_ACCOUNTS = 10
# fct_balance_rollforward's movements, each `<name>_minor` (classified by journal entry type)
ROLLFORWARD_COLUMNS = ("opening", "billed", "recognized", "voided", "catchup", "closing")
USAGE_TREND_DAYS = 14
FINANCE_MARTS = ("fin_calendar", "fin_daily_flash", "fin_usage_daily", "fin_mrr_movements",
                 "fin_mrr_bridge", "fin_receivables_aging", "fin_receivables_aging_buckets",
                 "fin_payment_events", "fin_payment_events_summary", "fin_revenue_by_product",
                 "fin_revenue_by_account", "fin_reconciliation_status",
                 "fin_reconciliation_findings")


def mart(name: str) -> str:
    return qualified("marts", name)


def _plain(value: Any) -> Any:
    """Engine-independent values: an integral DECIMAL (PostgreSQL sums, DuckDB HUGEINT paths)
    becomes an int."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


def _rows(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in conn.fetch_dicts(sql, list(params))]


def _as_date(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def check_marts(conn: Connection) -> None:
    have = {t for _, t in conn.tables(["marts"])}
    missing = [m for m in FINANCE_MARTS if m not in have]
    if missing:
        raise StageError(
            f"the finance marts are not built in this warehouse (missing marts.{missing[0]}"
            f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}): run `meterline run` "
            "for the latest night first (its dbt build makes them)")


def currencies(conn: Connection) -> dict[str, int]:
    return {r["currency"]: int(r["minor_unit_exponent"]) for r in _rows(
        conn, f"SELECT currency, minor_unit_exponent FROM {qualified('seeds', 'currencies')} "
              "WHERE minor_unit_exponent IS NOT NULL")}


class _Figures:
    """Makes and keeps the report's figures."""

    def __init__(self, exps: dict[str, int]):
        self.exps = exps
        self.all: dict[str, Figure] = {}

    def add(self, fig_id: str, label: str, row: dict[str, Any], column: str, mart_name: str,
            key: Sequence[str], kind: str, unit: str | None = None) -> Figure:
        if kind == "money":
            unit = row["currency"]
        fig = Figure(id=fig_id, label=label, value=row[column], kind=kind,
                     unit=unit or ("bps" if kind == "bps" else "count"),
                     mart=f"marts.{mart_name}", column=column,
                     key=tuple((k, row[k]) for k in key),
                     exponent=self.exps.get(row.get("currency") or "", 0))
        if fig_id in self.all:
            raise AssertionError(f"figure {fig_id} twice")
        self.all[fig_id] = fig
        return fig

    def money(self, row: dict[str, Any], minor: int | None) -> Money | None:
        return None if minor is None else Money(minor, row["currency"], self.exps[row["currency"]])

    def fmt(self, currency: str) -> Callable[[int], str]:
        exp = self.exps[currency]
        return lambda minor: compact_money(minor, currency, exp)


def _calendar_bounds(conn: Connection) -> dict[str, Any]:
    rows = _rows(conn, f"SELECT min(report_day) AS first_day, max(report_day) AS last_day, "
                       f"max(as_of) AS as_of FROM {mart('fin_calendar')}")
    return rows[0] if rows else {"first_day": None, "last_day": None, "as_of": None}


def _risk_reason(row: dict[str, Any]) -> str:
    """Why an item is at risk (fin_payment_events.at_risk_reason), with an unpaid invoice's
    failed payment attempts."""
    text = RISK_REASONS.get(row.get("at_risk_reason") or "", row.get("at_risk_reason") or "")
    attempts = row.get("failed_attempts")
    if row["event_type"] == "unpaid_invoice" and attempts:
        text += f" ({attempts} failed attempt{'s' if attempts != 1 else ''})"
    return text


def _difference_cell(row: dict[str, Any], exps: dict[str, int]) -> Any:
    """A finding's difference as the page shows it: money in its currency's major units, else
    the number with its unit."""
    diff, unit = row.get("difference"), row.get("unit")
    if diff is None:
        return None
    if unit in exps and isinstance(diff, int):
        return Money(diff, unit, exps[unit])
    shown = f"{diff:,}" if isinstance(diff, int) else str(diff.normalize())
    return f"{shown} {unit or ''}".strip()


def _findings_table(stem: str, title: str, rows: list[dict[str, Any]], exps: dict[str, int],
                    note: str, where: tuple[str, tuple[Any, ...]],
                    personal: frozenset[str] = frozenset()) -> ReportTable:
    """The findings (the rows of fin_reconciliation_findings where `where` holds); a quarantined
    row quoted in `detail` has its personal fields withheld unless configured
    (exports.columns.redact_detail)."""
    names = ["check_name", "status", "account_id", "category", "period", "day", "object_id", "reason"]
    return ReportTable(
        stem=stem, title=title, note=note,
        source=TableSource.of("marts.fin_reconciliation_findings", *where, [
            *[(c, Col.text(c)) for c in names], ("difference", Col.amount("difference", unit="unit")),
            ("detail", Col.free("detail"))]),
        columns=["check_name", "status", "account_id", "category", "period", "day", "object_id",
                 "reason", "difference", "detail"],
        headers=["check", "status", "account", "category", "period", "day", "object", "reason",
                 "difference", "detail"],
        rows=[[r["check_name"], r["status"], r["account_id"], r["category"], r["period"], r["day"],
               r["object_id"], r["reason"], _difference_cell(r, exps), redact_detail(r["detail"], personal)]
              for r in rows],
        numeric=frozenset({"difference"}), empty="no findings",
        merged=(("about", ("category", "period", "day", "object_id", "reason")),))


# ------------------------------------------------------------------------------------ daily flash


def daily_report(conn: Connection, day: dt.date, personal: frozenset[str] = frozenset()) -> Report:
    """The daily flash of `day`. `personal`: the kinds of personal data it may show
    ([exports] include_personal_data; none by default)."""
    check_marts(conn)
    cal = _rows(conn, f"SELECT * FROM {mart('fin_calendar')} WHERE report_day = ?", [day])
    if not cal:
        bounds = _calendar_bounds(conn)
        if bounds["last_day"] is None:
            raise NoBillingPeriodError(
                "no billing period has a complete day yet: billing starts with the first whole "
                "month ingested (run: meterline run --date D)")
        if day > _as_date(bounds["last_day"]):
            raise IntervalError(
                f"no complete data for {day} yet: the warehouse holds nights up to "
                f"{_as_date(bounds['last_day'])} (run: meterline run --date {day})")
        raise NoBillingPeriodError(f"{day} is before the first billing period in the warehouse "
                                   f"({_as_date(bounds['first_day'])})")
    c = cal[0]
    exps = currencies(conn)
    figs = _Figures(exps)
    as_of = c["as_of"]

    # -- money
    flash = _rows(conn, f"SELECT * FROM {mart('fin_daily_flash')} WHERE report_day = ? ORDER BY currency", [day])
    exponents_for(flash, exps)
    money_rows, money_charts, cards = [], [], []
    key = ("currency", "report_day")
    for r in flash:
        cur = r["currency"]
        per_measure = {}
        for m, label in MEASURES:
            f_day = figs.add(f"flash.{cur}.{m}.day", f"{label} on {day}", r, f"{m}_day_minor",
                             "fin_daily_flash", key, "money")
            f_mtd = figs.add(f"flash.{cur}.{m}.mtd", f"{label} month to date", r, f"{m}_mtd_minor",
                             "fin_daily_flash", key, "money")
            f_prev = figs.add(f"flash.{cur}.{m}.prev_mtd", f"{label} previous month to date", r,
                              f"{m}_prev_mtd_minor", "fin_daily_flash", key, "money")
            f_chg = figs.add(f"flash.{cur}.{m}.change_bps", f"{label} change", r, f"{m}_change_bps",
                             "fin_daily_flash", key, "bps")
            per_measure[m] = (f_day, f_mtd, f_prev, f_chg)
            money_rows.append([cur, label, f_day, f_mtd, f_prev, f_chg])
        cards.append(Card(title=f"{cur} net revenue, month to date", main=per_measure["revenue"][1], details=[
            ("vs previous month", per_measure["revenue"][3]),
            ("billed", per_measure["billed"][1]),
            ("collected", per_measure["collected"][1]),
            ("refunded", per_measure["refunded"][1]),
            (f"collected on {day:%d %b}", per_measure["collected"][0]),
        ]))
        money_charts.append(charts.grouped_bars(
            f"flash_mtd_{cur}", f"{cur}: month to date vs previous month",
            [label for _, label in MEASURES],
            [("this month", [r[f"{m}_mtd_minor"] for m, _ in MEASURES]),
             ("previous month", [r[f"{m}_prev_mtd_minor"] for m, _ in MEASURES])],
            figs.fmt(cur)))
    compare = (f"{c['compare_period']} days 1–{c['compare_day_of_month']}" if c["compare_period"]
               else "no previous month in the warehouse")
    money = Section(
        id="money", title="Billings and collections",
        intro=(f"{day} and {c['period']} to date (days 1–{c['day_of_month']}) against {compare}. "
               "Billed: invoices (dated their billing period's last day), void reversals, prepaid "
               "credits sold and credit notes. Collected: succeeded charges. Refunded: succeeded "
               "refunds. Net revenue: revenue recognized, net of refunds and credit notes."),
        cards=cards, charts=money_charts,
        tables=[ReportTable(
            stem="flash_money", title="Billings, collections, refunds and revenue",
            source=TableSource("marts.fin_daily_flash", tuple(
                SourceRows("report_day = ?", (day,), (
                    ("currency", Col.text("currency")), ("measure", Col.const(label)),
                    ("day", Col.money(f"{m}_day_minor")), ("month_to_date", Col.money(f"{m}_mtd_minor")),
                    ("previous_month_to_date", Col.money(f"{m}_prev_mtd_minor")),
                    ("change_pct", Col.bps(f"{m}_change_bps"))))
                for m, label in MEASURES)),
            columns=["currency", "measure", "day", "month_to_date", "previous_month_to_date",
                     "change_pct"],
            headers=["currency", "measure", str(day), f"{c['period']} to date",
                     f"{c['compare_period'] or 'previous month'} same days", "change"],
            rows=money_rows, numeric=frozenset({"day", "month_to_date", "previous_month_to_date", "change_pct"}),
            empty="no money moved yet")])

    # -- usage
    usage = _rows(conn, f"SELECT * FROM {mart('fin_usage_daily')} WHERE report_day = ? ORDER BY category", [day])
    first = day - dt.timedelta(days=USAGE_TREND_DAYS - 1)
    series = _rows(conn, f"SELECT category, unit, report_day, quantity FROM {mart('fin_usage_daily')} "
                         "WHERE report_day >= ? AND report_day <= ? ORDER BY category, report_day",
                   [first, day])
    days = sorted({_as_date(r["report_day"]) for r in series})
    by_cat: dict[str, dict[dt.date, int]] = {}
    units: dict[str, str] = {}
    for r in series:
        by_cat.setdefault(r["category"], {})[_as_date(r["report_day"])] = r["quantity"]
        units[r["category"]] = r["unit"]
    usage_rows, usage_charts = [], []
    ukey = ("category", "report_day")
    for r in usage:
        cat, unit = r["category"], r["unit"]
        f_q = figs.add(f"usage.{cat}.day", f"{cat} on {day}", r, "quantity", "fin_usage_daily", ukey, "quantity", unit)
        f_7 = figs.add(f"usage.{cat}.last_7d", f"{cat} last 7 days", r, "last_7d_quantity",
                       "fin_usage_daily", ukey, "quantity", unit)
        f_p7 = figs.add(f"usage.{cat}.prior_7d", f"{cat} 7 days before", r, "prior_7d_quantity",
                        "fin_usage_daily", ukey, "quantity", unit)
        f_t = figs.add(f"usage.{cat}.trend_bps", f"{cat} trend", r, "trend_bps", "fin_usage_daily", ukey, "bps")
        f_m = figs.add(f"usage.{cat}.mtd", f"{cat} month to date", r, "mtd_quantity", "fin_usage_daily",
                       ukey, "quantity", unit)
        f_a = figs.add(f"usage.{cat}.accounts", f"{cat} accounts", r, "account_count", "fin_usage_daily",
                       ukey, "count")
        usage_rows.append([cat, unit, f_q, f_7, f_p7, f_t if r["has_full_trend"] else None, f_m, f_a])
        usage_charts.append(charts.columns(
            f"usage_{cat}", f"{cat} ({unit}s per day)", [d.strftime("%m-%d") for d in days],
            [by_cat.get(cat, {}).get(d, 0) for d in days], compact_number))
    usage_section = Section(
        id="usage", title="Usage by data category",
        intro=(f"Accepted usage (latest version of every metered hour) summed over accounts. Trend: "
               f"the 7 days up to {day} against the 7 days before them (shown once 14 days are in). "
               f"Charts: the last {len(days)} days, {day} highlighted."),
        charts=usage_charts,
        tables=[
            ReportTable(
                stem="flash_usage", title="Usage by data category",
                source=TableSource.of("marts.fin_usage_daily", "report_day = ?", [day], [
                    ("category", Col.text("category")), ("unit", Col.text("unit")),
                    ("day", Col.number("quantity")), ("last_7_days", Col.number("last_7d_quantity")),
                    ("prior_7_days", Col.number("prior_7d_quantity")),
                    ("trend_pct", Col.bps("trend_bps", shown_if="has_full_trend")),
                    ("month_to_date", Col.number("mtd_quantity")), ("accounts", Col.number("account_count"))]),
                columns=["category", "unit", "day", "last_7_days", "prior_7_days", "trend_pct",
                         "month_to_date", "accounts"],
                headers=["category", "unit", str(day), "last 7 days", "7 days before", "trend",
                         f"{c['period']} to date", "accounts"],
                rows=usage_rows, empty="no usage",
                numeric=frozenset({"day", "last_7_days", "prior_7_days", "trend_pct", "month_to_date", "accounts"})),
            ReportTable(
                stem="flash_usage_days", title=f"Usage per day, last {len(days)} days",
                source=TableSource.of("marts.fin_usage_daily", "report_day >= ? AND report_day <= ?",
                                      [first, day], [("day", Col.date("report_day"))],
                                      pivot=("category", Col.number("quantity"))),
                columns=["day", *sorted(by_cat)],
                headers=["day", *[f"{cat} ({units[cat]}s)" for cat in sorted(by_cat)]],
                rows=[[d, *[by_cat[cat].get(d) for cat in sorted(by_cat)]] for d in days],
                numeric=frozenset(by_cat), empty="no usage"),
        ])

    # -- reconciliation
    status = _rows(conn, f"SELECT * FROM {mart('fin_reconciliation_status')} WHERE scope = 'all' "
                         "AND is_finding ORDER BY check_name, status")
    findings = _rows(conn, f"SELECT * FROM {mart('fin_reconciliation_findings')} "
                           "ORDER BY check_name, status, account_id, category, period, day, object_id, reason")
    recon_as_of = status[0]["as_of"] if status else as_of
    status_rows = []
    skey = ("scope", "check_name", "status")
    for r in status:
        f_n = figs.add(f"drift.{r['check_name']}.{r['status']}.findings", f"{r['check_name']} {r['status']} findings",
                       r, "findings", "fin_reconciliation_status", skey, "count")
        f_c = figs.add(f"drift.{r['check_name']}.{r['status']}.compared", f"{r['check_name']} {r['status']} rows",
                       r, "compared_rows", "fin_reconciliation_status", skey, "count")
        status_rows.append([r["check_name"], r["status"], f_n, f_c])
    drift = Section(
        id="drift", title="Open drift",
        intro=(f"Findings of the latest reconciliation (as of {recon_as_of:%Y-%m-%d %H:%M} UTC): every "
               "compared row that is not matched, within tolerance, late or explained, and every "
               "quarantined row. `meterline reconcile --details` shows each."),
        charts=[charts.hbars("drift_by_check", "Findings by check and status",
                             [f"{r['check_name']} · {r['status']}" for r in status if r["findings"]],
                             [r["findings"] for r in status if r["findings"]], lambda v: f"{v:,}",
                             label_width=210)],
        tables=[
            ReportTable(stem="flash_drift_summary", title="Findings by check",
                        source=TableSource.of("marts.fin_reconciliation_status", "scope = 'all' AND is_finding", [], [
                            ("check_name", Col.text("check_name")), ("status", Col.text("status")),
                            ("findings", Col.number("findings")), ("rows_compared", Col.number("compared_rows"))]),
                        columns=["check_name", "status", "findings", "rows_compared"],
                        headers=["check", "status", "findings", "rows with this status"],
                        rows=status_rows, numeric=frozenset({"findings", "rows_compared"}),
                        empty="no open findings"),
            _findings_table("flash_drift_findings", "Findings", findings, exps,
                            note="usage_period rows already reported by a finer finding are not repeated.",
                            where=("", ()), personal=personal),
        ])

    # -- at risk
    risk = _rows(conn, f"SELECT * FROM {mart('fin_payment_events')} WHERE is_at_risk "
                       "ORDER BY currency, event_type, created_at, object_id")
    risk_totals = _rows(conn, f"SELECT * FROM {mart('fin_payment_events_summary')} WHERE scope = 'at_risk' "
                              "ORDER BY currency, event_type = 'total', event_type")
    exponents_for(risk + risk_totals, exps)
    total_rows = []
    rkey = ("scope", "currency", "event_type")
    for r in risk_totals:
        f_n = figs.add(f"at_risk.{r['currency']}.{r['event_type']}.count",
                       f"{r['event_type']} at risk ({r['currency']})", r, "event_count",
                       "fin_payment_events_summary", rkey, "count")
        f_a = figs.add(f"at_risk.{r['currency']}.{r['event_type']}.amount",
                       f"{r['event_type']} at risk ({r['currency']})", r, "amount_minor",
                       "fin_payment_events_summary", rkey, "money")
        total_rows.append([r["currency"], EVENT_LABELS[r["event_type"]], f_n, f_a])
    at_risk = Section(
        id="at_risk", title="Invoices at risk",
        intro=("As Stripe last reported them, each Stripe invoice once at its amount due, each disputed "
               "charge once: unpaid invoices that are uncollectible, whose payment failed (retries are "
               "reasons, not more money) or still unpaid after the grace days, and open disputes "
               "(inquiries included). The total is the money at risk."),
        tables=[
            ReportTable(stem="flash_at_risk_totals", title="At risk, by currency",
                        source=TableSource.of("marts.fin_payment_events_summary", "scope = 'at_risk'", [], [
                            ("currency", Col.text("currency")), ("kind", Col.label("event_type", EVENT_LABELS)),
                            ("count", Col.number("event_count")), ("amount", Col.money("amount_minor"))]),
                        columns=["currency", "kind", "count", "amount"],
                        headers=["currency", "kind", "count", "amount"], rows=total_rows,
                        numeric=frozenset({"count", "amount"}), empty="nothing at risk"),
            ReportTable(stem="flash_at_risk", title="Items at risk",
                        source=TableSource.of("marts.fin_payment_events", "is_at_risk", [], [
                            ("kind", Col.label("event_type", EVENT_LABELS)), ("object_id", Col.text("object_id")),
                            ("account_id", Col.text("account_id")), ("billed_period", Col.text("period")),
                            ("currency", Col.text("currency")), ("amount", Col.money("at_risk_minor")),
                            ("reason", Col.free("at_risk_reason", "failed_attempts")),
                            ("status", Col.text("event_status")), ("created_at", Col.text("created_at"))]),
                        columns=["kind", "object_id", "account_id", "billed_period", "currency",
                                 "amount", "reason", "status", "created_at"],
                        headers=["kind", "Stripe object", "account", "billed period", "currency",
                                 "amount at risk", "why", "status", "created"],
                        rows=[[EVENT_LABELS[r["event_type"]], r["object_id"], r["account_id"], r["period"],
                               r["currency"], figs.money(r, r["at_risk_minor"]), _risk_reason(r),
                               r["event_status"], r["created_at"]] for r in risk],
                        numeric=frozenset({"amount"}), empty="nothing at risk"),
        ])

    state = ("closed" if c["is_period_locked"] else "open")
    notices = []
    last_day = _as_date(_calendar_bounds(conn)["last_day"])
    if day < last_day:
        notices.append(f"Data is complete through {last_day}; money and usage are shown for {day} as "
                       f"known now. Open drift and invoices at risk describe the latest night.")
    return Report(
        kind="daily", key=day.isoformat(), title=f"Daily flash — {day:%A %d %B %Y}",
        subtitle=f"billing month {c['period']} ({state}), day {c['day_of_month']} of {c['days_in_period']}",
        as_of=as_of,
        facts=[("day", day.isoformat()), ("billing month", f"{c['period']} ({state})"),
               ("data as of", f"{as_of:%Y-%m-%d %H:%M} UTC"), ("compared with", compare)],
        sections=[money, usage_section, drift, at_risk], figures=figs.all, notices=notices)


# ------------------------------------------------------------------------------------ month-end pack


def month_report(conn: Connection, period: str, personal: frozenset[str] = frozenset()) -> Report:
    """The month-end pack of `period`. `personal`: the kinds of personal data it may show
    ([exports] include_personal_data; none by default: no account names)."""
    check_marts(conn)
    cal = _rows(conn, f"SELECT * FROM {mart('fin_calendar')} WHERE period = ? AND day_of_month = days_in_period",
                [period])
    bounds = _calendar_bounds(conn)
    if not cal or not cal[0]["is_period_complete"]:
        if bounds["last_day"] is None:
            raise NoBillingPeriodError(
                "no billing period has a complete day yet: billing starts with the first whole "
                "month ingested (run: meterline run --date D)")
        year, month = (int(x) for x in period.split("-"))
        last = dt.date(year, month, calendar.monthrange(year, month)[1])
        if last > _as_date(bounds["last_day"]):
            raise IntervalError(
                f"{period} is not complete: the warehouse holds nights up to "
                f"{_as_date(bounds['last_day'])} (the month-end pack needs every night to {last})")
        raise NoBillingPeriodError(f"{period} is not a billing period in the warehouse (first day "
                                   f"{_as_date(bounds['first_day'])})")
    c = cal[0]
    month_end = _as_date(c["report_day"])
    exps = currencies(conn)
    figs = _Figures(exps)
    as_of = c["as_of"]
    locked = bool(c["is_period_locked"])

    # -- headline: billed, collected, net revenue over the whole month (the flash's month to date
    # on the month's last day)
    flash = _rows(conn, f"SELECT * FROM {mart('fin_daily_flash')} WHERE report_day = ? ORDER BY currency",
                  [month_end])
    exponents_for(flash, exps)
    cards = []
    for r in flash:
        cur = r["currency"]
        key = ("currency", "report_day")
        billed = figs.add(f"month.{cur}.billed", f"{cur} billed in {period}", r, "billed_mtd_minor",
                          "fin_daily_flash", key, "money")
        collected = figs.add(f"month.{cur}.collected", f"{cur} collected in {period}", r,
                             "collected_mtd_minor", "fin_daily_flash", key, "money")
        refunded = figs.add(f"month.{cur}.refunded", f"{cur} refunded in {period}", r,
                            "refunded_mtd_minor", "fin_daily_flash", key, "money")
        revenue = figs.add(f"month.{cur}.revenue", f"{cur} net revenue in {period}", r,
                           "revenue_mtd_minor", "fin_daily_flash", key, "money")
        change = figs.add(f"month.{cur}.revenue_change_bps", f"{cur} net revenue vs previous month", r,
                          "revenue_change_bps", "fin_daily_flash", key, "bps")
        cards.append(Card(title=f"{cur} net revenue", main=revenue, details=[
            ("billed", billed), ("collected", collected), ("refunded", refunded),
            ("vs previous month", change)]))

    # -- revenue by product
    products = _rows(conn, f"SELECT * FROM {mart('fin_revenue_by_product')} WHERE period = ? "
                           "ORDER BY currency, product_rank", [period])
    exponents_for(products, exps)
    pkey = ("currency", "period", "product")
    product_rows, product_charts = [], []
    for cur in sorted({r["currency"] for r in products}):
        rows = [r for r in products if r["currency"] == cur]
        for r in rows:
            f = figs.add(f"revenue.{cur}.{r['product']}", f"{cur} {r['product']} revenue", r, "revenue_minor",
                         "fin_revenue_by_product", pkey, "money")
            product_rows.append([cur, r["product"], f, Bps(r["share_bps"], signed=False) if r["share_bps"] is not None else None,
                                 figs.money(r, r["catchup_minor"])])
        total = figs.add(f"revenue.{cur}.total", f"{cur} revenue total", rows[0], "period_total_minor",
                         "fin_revenue_by_product", pkey, "money")
        product_rows.append([cur, "total", total, None, None])
        product_charts.append(charts.hbars(f"revenue_products_{cur}", f"{cur} revenue by product",
                                           [r["product"] for r in rows], [r["revenue_minor"] for r in rows],
                                           figs.fmt(cur)))
    revenue = Section(
        id="revenue", title="Revenue by product",
        intro=("Revenue recognized in the month (closed months as frozen at their close): usage in "
               "the day it was consumed, fees ratably; refunds and credit notes as contra-revenue; "
               "catch-ups for earlier closed months in the month they are booked."),
        cards=cards, charts=product_charts,
        tables=[ReportTable(stem="pack_revenue_by_product", title="Revenue by product",
                            source=TableSource("marts.fin_revenue_by_product", (
                                SourceRows("period = ?", (period,), (
                                    ("currency", Col.text("currency")), ("product", Col.text("product")),
                                    ("revenue", Col.money("revenue_minor")), ("share_pct", Col.bps("share_bps")),
                                    ("of_which_catch_up", Col.money("catchup_minor")))),
                                # per currency, the total row (its largest product's row holds it)
                                SourceRows("period = ? AND product_rank = 1", (period,), (
                                    ("currency", Col.text("currency")), ("product", Col.const("total")),
                                    ("revenue", Col.money("period_total_minor")), ("share_pct", Col.const()),
                                    ("of_which_catch_up", Col.const()))))),
                            columns=["currency", "product", "revenue", "share_pct", "of_which_catch_up"],
                            headers=["currency", "product", "revenue", "share", "of which catch-up"],
                            rows=product_rows, numeric=frozenset({"revenue", "share_pct", "of_which_catch_up"}),
                            empty="no revenue")])

    # -- top accounts
    accounts = _rows(conn, f"SELECT * FROM {mart('fin_revenue_by_account')} WHERE period = ? AND account_rank <= ? "
                           "ORDER BY currency, account_rank", [period, TOP_ACCOUNTS])
    exponents_for(accounts, exps)
    akey = ("currency", "period", "account_id")
    # account names are personal data (a sole trader's account is a person): only when configured
    account_columns = exported_columns("pack_top_accounts", personal)
    with_names = "account_name" in account_columns
    account_rows, account_charts = [], []
    for cur in sorted({r["currency"] for r in accounts}):
        rows = [r for r in accounts if r["currency"] == cur]
        for r in rows:
            f_r = figs.add(f"accounts.{cur}.{r['account_id']}.revenue", f"{r['account_id']} revenue", r,
                           "revenue_minor", "fin_revenue_by_account", akey, "money")
            f_b = figs.add(f"accounts.{cur}.{r['account_id']}.billed", f"{r['account_id']} billed", r,
                           "billed_minor", "fin_revenue_by_account", akey, "money")
            account_rows.append([cur, r["account_rank"], r["account_id"],
                                 *([r["account_name"]] if with_names else []), f_r,
                                 Bps(r["share_bps"], signed=False) if r["share_bps"] is not None else None, f_b])
        account_charts.append(charts.hbars(
            f"top_accounts_{cur}", f"{cur} top accounts by revenue",
            [(r["account_name"] if with_names else None) or r["account_id"] for r in rows],
            [r["revenue_minor"] for r in rows],
            figs.fmt(cur)))
    top = Section(
        id="accounts", title=f"Top accounts (up to {TOP_ACCOUNTS} per currency)",
        intro="Revenue recognized in the month, and what the account's invoice for the month bills.",
        charts=account_charts,
        tables=[ReportTable(stem="pack_top_accounts", title="Top accounts",
                            source=TableSource.of(
                                "marts.fin_revenue_by_account", "period = ? AND account_rank <= ?",
                                [period, TOP_ACCOUNTS], [(c, {
                                    "currency": Col.text("currency"), "rank": Col.number("account_rank"),
                                    "account_id": Col.text("account_id"), "account_name": Col.text("account_name"),
                                    "revenue": Col.money("revenue_minor"), "share_pct": Col.bps("share_bps"),
                                    "billed": Col.money("billed_minor")}[c]) for c in account_columns]),
                            columns=account_columns,
                            headers=[{"account_id": "account", "account_name": "name", "share_pct": "share",
                                      "billed": "invoice total"}.get(c, c) for c in account_columns],
                            rows=account_rows, numeric=frozenset({"rank", "revenue", "share_pct", "billed"}),
                            empty="no accounts")])

    # -- MRR
    bridge = _rows(conn, f"SELECT * FROM {mart('fin_mrr_bridge')} WHERE period = ? ORDER BY currency", [period])
    movements = _rows(conn, f"SELECT * FROM {mart('fin_mrr_movements')} WHERE period = ? "
                            "ORDER BY currency, movement, account_id", [period])
    exponents_for(bridge + movements, exps)
    bkey = ("currency", "period")
    bridge_rows, mrr_charts = [], []
    for r in bridge:
        cur = r["currency"]
        f_open = figs.add(f"mrr.{cur}.opening", f"{cur} opening MRR", r, "opening_mrr_minor",
                          "fin_mrr_bridge", bkey, "money")
        moves = [figs.add(f"mrr.{cur}.{m}", f"{cur} MRR {label}", r, f"{m}_minor", "fin_mrr_bridge", bkey, "money")
                 for m, label in MOVEMENTS]
        f_close = figs.add(f"mrr.{cur}.closing", f"{cur} closing MRR", r, "closing_mrr_minor",
                           "fin_mrr_bridge", bkey, "money")
        f_arr = figs.add(f"arr.{cur}.closing", f"{cur} ARR", r, "closing_arr_minor", "fin_mrr_bridge", bkey, "money")
        f_paying = figs.add(f"mrr.{cur}.paying_accounts", f"{cur} paying accounts", r, "paying_accounts",
                            "fin_mrr_bridge", bkey, "count")
        bridge_rows.append([cur, f_open, *moves, f_close, f_arr, f_paying])
        mrr_charts.append(charts.waterfall(
            f"mrr_bridge_{cur}", f"{cur} MRR bridge",
            [("opening", r["opening_mrr_minor"], "total"),
             *[(label, r[f"{m}_minor"], "delta") for m, label in MOVEMENTS],
             ("closing", r["closing_mrr_minor"], "total")],
            figs.fmt(cur)))
    mrr = Section(
        id="mrr", title="MRR and ARR",
        intro=("MRR: what each account's invoice for the month bills on recurring lines (base fees, "
               "usage, reserved volume, commitment true-ups, contractual discounts); credits drawn, "
               "adjustments for earlier months, refunds and credit notes are not MRR. ARR = 12 × MRR. "
               "Movements against the previous month. New: an account's first MRR, subscribed (in that "
               "currency) since the warehouse's first month; reactivation: MRR again after 0, or an "
               "account subscribed before that paying again; in the warehouse's first month an older "
               "account's MRR is carried in. MRR is what the invoice bills: a mid-month start shows its "
               "prorated fee, and the full fee the month after as expansion."),
        charts=mrr_charts,
        tables=[
            ReportTable(stem="pack_mrr_bridge", title="MRR bridge",
                        source=TableSource.of("marts.fin_mrr_bridge", "period = ?", [period], [
                            ("currency", Col.text("currency")), ("opening_mrr", Col.money("opening_mrr_minor")),
                            *[(m, Col.money(f"{m}_minor")) for m, _ in MOVEMENTS],
                            ("closing_mrr", Col.money("closing_mrr_minor")),
                            ("closing_arr", Col.money("closing_arr_minor")),
                            ("paying_accounts", Col.number("paying_accounts"))]),
                        columns=["currency", "opening_mrr", *[m for m, _ in MOVEMENTS], "closing_mrr",
                                 "closing_arr", "paying_accounts"],
                        headers=["currency", "opening MRR", *[label for _, label in MOVEMENTS], "closing MRR",
                                 "ARR", "paying accounts"],
                        rows=bridge_rows, empty="no MRR",
                        numeric=frozenset({"opening_mrr", *[m for m, _ in MOVEMENTS], "closing_mrr",
                                           "closing_arr", "paying_accounts"})),
            ReportTable(stem="pack_mrr_accounts", title="MRR by account",
                        source=TableSource.of("marts.fin_mrr_movements", "period = ?", [period], [
                            ("currency", Col.text("currency")), ("account_id", Col.text("account_id")),
                            ("movement", Col.words("movement")), ("opening_mrr", Col.money("opening_mrr_minor")),
                            ("change", Col.money("movement_minor")), ("mrr", Col.money("mrr_minor")),
                            ("arr", Col.money("arr_minor"))]),
                        columns=["currency", "account_id", "movement", "opening_mrr", "change", "mrr", "arr"],
                        headers=["currency", "account", "movement", "previous MRR", "change", "MRR", "ARR"],
                        rows=[[r["currency"], r["account_id"], r["movement"].replace("_", " "),
                               figs.money(r, r["opening_mrr_minor"]), figs.money(r, r["movement_minor"]),
                               figs.money(r, r["mrr_minor"]), figs.money(r, r["arr_minor"])] for r in movements],
                        numeric=frozenset({"opening_mrr", "change", "mrr", "arr"}), empty="no MRR"),
        ])

    # -- deferred revenue
    rollforward = _rows(conn, f"SELECT * FROM {qualified('marts', 'fct_balance_rollforward')} "
                              "WHERE accounting_period = ? ORDER BY currency, balance", [period])
    waterfall = _rows(conn, f"SELECT * FROM {qualified('marts', 'fct_deferred_revenue_waterfall')} "
                            "WHERE recognition_period = ? ORDER BY currency, origin_period", [period])
    exponents_for(rollforward + waterfall, exps)
    rkey = ("currency", "accounting_period", "balance")
    roll_rows, roll_charts = [], []
    for r in rollforward:
        cur, bal = r["currency"], r["balance"]
        fs = [figs.add(f"rollforward.{cur}.{bal}.{col}", f"{cur} {bal} {col}", r, f"{col}_minor",
                       "fct_balance_rollforward", rkey, "money")
              for col in ROLLFORWARD_COLUMNS]
        roll_rows.append([cur, bal.replace("_", " "), *fs])
        if bal == "deferred_revenue":
            roll_charts.append(charts.waterfall(
                f"deferred_revenue_{cur}", f"{cur} deferred revenue",
                [("opening", r["opening_minor"], "total"), ("credits sold", r["billed_minor"], "delta"),
                 ("recognized", -r["recognized_minor"], "delta"), ("voided", r["voided_minor"], "delta"),
                 ("catch-up", r["catchup_minor"], "delta"), ("closing", r["closing_minor"], "total")],
                figs.fmt(cur), width=360))
    deferred = Section(
        id="deferred", title="Deferred revenue roll-forward",
        intro=("From the general journal. Deferred revenue (prepaid credits sold, not yet used): "
               "closing = opening + sold − recognized (applied to invoices or expired) + voided + catch-up. "
               "Unbilled receivables (revenue earned, not yet invoiced): closing = opening + recognized − "
               "billed + voided + catch-up. Each movement is classified by its journal entry's type: "
               "voided is what reversing a voided invoice gave back to the balance, catch-up what "
               "late changes to a closed month added to it."),
        charts=roll_charts,
        tables=[
            ReportTable(stem="pack_deferred_revenue", title="Roll-forward",
                        source=TableSource.of("marts.fct_balance_rollforward", "accounting_period = ?", [period], [
                            ("currency", Col.text("currency")), ("balance", Col.words("balance")),
                            *[(col, Col.money(f"{col}_minor")) for col in ROLLFORWARD_COLUMNS]]),
                        columns=["currency", "balance", *ROLLFORWARD_COLUMNS],
                        headers=["currency", "balance", "opening", "billed / sold", "recognized", "voided",
                                 "catch-up", "closing"],
                        rows=roll_rows, numeric=frozenset(ROLLFORWARD_COLUMNS),
                        empty="no balances"),
            ReportTable(stem="pack_deferred_waterfall", title="Prepaid credits recognized this month, by month sold",
                        source=TableSource.of("marts.fct_deferred_revenue_waterfall", "recognition_period = ?",
                                              [period], [
                            ("currency", Col.text("currency")), ("origin_period", Col.text("origin_period")),
                            ("sold", Col.money("sold_minor")), ("recognized", Col.money("recognized_minor")),
                            ("remaining", Col.money("remaining_minor"))]),
                        columns=["currency", "origin_period", "sold", "recognized", "remaining"],
                        headers=["currency", "sold in", "sold this month", "recognized this month",
                                 "remaining after"],
                        rows=[[r["currency"], r["origin_period"], figs.money(r, r["sold_minor"]),
                               figs.money(r, r["recognized_minor"]), figs.money(r, r["remaining_minor"])]
                              for r in waterfall],
                        numeric=frozenset({"sold", "recognized", "remaining"}), empty="no prepaid credits"),
        ])

    # -- receivables aging
    buckets = _rows(conn, f"SELECT * FROM {mart('fin_receivables_aging_buckets')} WHERE snapshot_day = ? "
                          "ORDER BY currency, bucket_order", [month_end])
    open_invoices = _rows(conn, f"SELECT * FROM {mart('fin_receivables_aging')} WHERE snapshot_day = ? "
                                "ORDER BY currency, age_days DESC, invoice_id", [month_end])
    exponents_for(buckets + open_invoices, exps)
    gkey = ("snapshot_day", "currency", "aging_bucket")
    bucket_rows, aging_charts = [], []
    for cur in sorted({r["currency"] for r in buckets}):
        rows = [r for r in buckets if r["currency"] == cur]
        for r in rows:
            f_o = figs.add(f"aging.{cur}.{r['aging_bucket']}.open", f"{cur} {r['aging_bucket']} open", r,
                           "open_minor", "fin_receivables_aging_buckets", gkey, "money")
            f_n = figs.add(f"aging.{cur}.{r['aging_bucket']}.invoices", f"{cur} {r['aging_bucket']} invoices", r,
                           "invoice_count", "fin_receivables_aging_buckets", gkey, "count")
            bucket_rows.append([cur, BUCKET_LABELS[r["aging_bucket"]], f_n, f_o])
        aging_charts.append(charts.hbars(f"aging_{cur}", f"{cur} receivables by age at {month_end}",
                                         [BUCKET_LABELS[r["aging_bucket"]] for r in rows],
                                         [r["open_minor"] for r in rows], figs.fmt(cur), label_width=160))
    aging = Section(
        id="aging", title=f"Receivables aging at {month_end}",
        intro=("Invoices still open at the end of the month: total less succeeded charges and credit "
               "notes by then, aged by days past due. An invoice is dated its billing period's last day "
               "and due the payment terms later (dbt var payment_terms_days, net 30 unless configured); "
               "current: not yet due. Overpaid invoices are a credit balance, not aged."),
        charts=aging_charts,
        tables=[
            ReportTable(stem="pack_receivables_aging", title="Aging buckets",
                        source=TableSource.of("marts.fin_receivables_aging_buckets", "snapshot_day = ?",
                                              [month_end], [
                            ("currency", Col.text("currency")), ("bucket", Col.label("aging_bucket", BUCKET_LABELS)),
                            ("invoices", Col.number("invoice_count")), ("open_amount", Col.money("open_minor"))]),
                        columns=["currency", "bucket", "invoices", "open_amount"],
                        headers=["currency", "age", "invoices", "open amount"], rows=bucket_rows,
                        numeric=frozenset({"invoices", "open_amount"}), empty="no receivables"),
            ReportTable(stem="pack_open_invoices", title="Open invoices",
                        source=TableSource.of("marts.fin_receivables_aging", "snapshot_day = ?", [month_end], [
                            *[(c, Col.text(c)) for c in ("invoice_id", "account_id", "period", "currency")],
                            ("invoice_date", Col.date("invoice_date")), ("due_date", Col.date("due_date")),
                            *[(c, Col.money(f"{c}_minor")) for c in ("total", "collected", "credited", "open")],
                            ("days_past_due", Col.number("days_past_due")),
                            ("bucket", Col.label("aging_bucket", BUCKET_LABELS))]),
                        columns=["invoice_id", "account_id", "period", "currency", "invoice_date", "due_date",
                                 "total", "collected", "credited", "open", "days_past_due", "bucket"],
                        headers=["invoice", "account", "period", "currency", "dated", "due", "total", "collected",
                                 "credited", "open", "days past due", "bucket"],
                        rows=[[r["invoice_id"], r["account_id"], r["period"], r["currency"],
                               _as_date(r["invoice_date"]), _as_date(r["due_date"]), figs.money(r, r["total_minor"]),
                               figs.money(r, r["collected_minor"]), figs.money(r, r["credited_minor"]),
                               figs.money(r, r["open_minor"]), r["days_past_due"], BUCKET_LABELS[r["aging_bucket"]]]
                              for r in open_invoices],
                        numeric=frozenset({"total", "collected", "credited", "open", "days_past_due"}),
                        empty="no open invoices"),
        ])

    # -- refunds and disputes
    summary = _rows(conn, f"SELECT * FROM {mart('fin_payment_events_summary')} WHERE scope = 'month' "
                          "AND scope_period = ? ORDER BY currency, event_type", [period])
    events = _rows(conn, f"SELECT * FROM {mart('fin_payment_events')} WHERE event_period = ? "
                         "ORDER BY currency, event_type, created_at, object_id", [period])
    exponents_for(summary + events, exps)
    ekey = ("scope", "scope_period", "currency", "event_type")
    summary_rows = []
    for r in summary:
        f_n = figs.add(f"payments.{r['currency']}.{r['event_type']}.count", f"{r['event_type']} count", r,
                       "event_count", "fin_payment_events_summary", ekey, "count")
        f_c = figs.add(f"payments.{r['currency']}.{r['event_type']}.counted", f"{r['event_type']} in the amount",
                       r, "counted_count", "fin_payment_events_summary", ekey, "count")
        f_a = figs.add(f"payments.{r['currency']}.{r['event_type']}.amount", f"{r['event_type']} amount", r,
                       "amount_minor", "fin_payment_events_summary", ekey, "money")
        f_o = figs.add(f"payments.{r['currency']}.{r['event_type']}.open", f"{r['event_type']} open", r,
                       "open_count", "fin_payment_events_summary", ekey, "count")
        summary_rows.append([r["currency"], EVENT_LABELS[r["event_type"]], f_n, f_c, f_a, f_o])
    payments = Section(
        id="payments", title="Refunds and disputes",
        intro=(f"Stripe refunds, disputes (card-issuer inquiries included), failed payments and unpaid "
               f"invoices created in {period}, with their status as Stripe last reported it. Amounts: "
               "succeeded refunds only (as refunded above; pending, failed and canceled ones are "
               "counted, not added), each disputed charge once, each Stripe invoice's failed "
               "payments once (retries are not added), unpaid invoices' amount due."),
        tables=[
            ReportTable(stem="pack_payment_events_summary", title="By currency and kind",
                        source=TableSource.of("marts.fin_payment_events_summary",
                                              "scope = 'month' AND scope_period = ?", [period], [
                            ("currency", Col.text("currency")), ("kind", Col.label("event_type", EVENT_LABELS)),
                            ("count", Col.number("event_count")), ("in_amount", Col.number("counted_count")),
                            ("amount", Col.money("amount_minor")), ("still_open", Col.number("open_count"))]),
                        columns=["currency", "kind", "count", "in_amount", "amount", "still_open"],
                        headers=["currency", "kind", "count", "in the amount", "amount", "still open"],
                        rows=summary_rows, numeric=frozenset({"count", "in_amount", "amount", "still_open"}),
                        empty=f"none in {period}"),
            ReportTable(stem="pack_payment_events", title="Each refund, dispute and failed payment",
                        source=TableSource.of("marts.fin_payment_events", "event_period = ?", [period], [
                            ("kind", Col.label("event_type", EVENT_LABELS)), ("object_id", Col.text("object_id")),
                            ("account_id", Col.text("account_id")), ("billed_period", Col.text("period")),
                            ("currency", Col.text("currency")), ("amount", Col.money("amount_minor")),
                            ("in_amount", Col.label("is_counted", {True: "yes", False: "no"})),
                            ("status", Col.text("event_status")), ("created_at", Col.text("created_at"))]),
                        columns=["kind", "object_id", "account_id", "billed_period", "currency", "amount",
                                 "in_amount", "status", "created_at"],
                        headers=["kind", "Stripe object", "account", "billed period", "currency", "amount",
                                 "in the amount", "status", "created"],
                        rows=[[EVENT_LABELS[r["event_type"]], r["object_id"], r["account_id"], r["period"],
                               r["currency"], figs.money(r, r["amount_minor"]), "yes" if r["is_counted"] else "no",
                               r["event_status"], r["created_at"]] for r in events],
                        numeric=frozenset({"amount"}), empty=f"none in {period}"),
        ])

    # -- reconciliation
    status = _rows(conn, f"SELECT * FROM {mart('fin_reconciliation_status')} WHERE scope = 'month' "
                         "AND scope_period = ? ORDER BY check_name, status", [period])
    findings = _rows(conn, f"SELECT * FROM {mart('fin_reconciliation_findings')} WHERE scope_period = ? "
                           "ORDER BY check_name, status, account_id, category, period, day, object_id, reason",
                     [period])
    recon_as_of = status[0]["as_of"] if status else as_of
    skey = ("scope", "scope_period", "check_name", "status")
    status_rows = []
    for r in status:
        f_c = figs.add(f"recon.{r['check_name']}.{r['status']}.compared", f"{r['check_name']} {r['status']} rows",
                       r, "compared_rows", "fin_reconciliation_status", skey, "count")
        f_n = figs.add(f"recon.{r['check_name']}.{r['status']}.findings", f"{r['check_name']} {r['status']} findings",
                       r, "findings", "fin_reconciliation_status", skey, "count")
        status_rows.append([r["check_name"], r["status"], "finding" if r["is_finding"] else "ok", f_c, f_n])
    checks = sorted({r["check_name"] for r in status})
    recon_charts = [charts.stacked_share(f"recon_{check}", f"{check}: rows by status",
                                         [(r["status"], r["compared_rows"] or r["findings"])
                                          for r in status if r["check_name"] == check],
                                         lambda v: f"{v:,}") for check in checks]
    recon = Section(
        id="reconciliation", title=f"Reconciliation of {period}",
        intro=(f"The latest reconciliation (as of {recon_as_of:%Y-%m-%d %H:%M} UTC) for rows of {period} "
               "(its periods and days, and the payments and balance transactions whose Stripe charge, "
               "refund or payout was created in it): how many compared rows have each status, and the "
               "findings. Checks about sources (freshness, row counts, completeness) are in the daily "
               "flash."),
        charts=recon_charts,
        tables=[
            ReportTable(stem="pack_reconciliation_status", title="Rows and findings by check and status",
                        source=TableSource.of("marts.fin_reconciliation_status",
                                              "scope = 'month' AND scope_period = ?", [period], [
                            ("check_name", Col.text("check_name")), ("status", Col.text("status")),
                            ("kind", Col.label("is_finding", {True: "finding", False: "ok"})),
                            ("rows", Col.number("compared_rows")), ("findings", Col.number("findings"))]),
                        columns=["check_name", "status", "kind", "rows", "findings"],
                        headers=["check", "status", "", "rows", "findings"], rows=status_rows,
                        numeric=frozenset({"rows", "findings"}), empty="nothing reconciled"),
            _findings_table("pack_reconciliation_findings", "Findings", findings, exps,
                            note="usage_period rows already reported by a finer finding are not repeated.",
                            where=("scope_period = ?", (period,)), personal=personal),
        ])

    notices = []
    if not locked:
        notices.append(f"{period} is not closed: these figures are preliminary and will change until "
                       f"`meterline close --period {period}`.")
    state = "closed" if locked else "not closed"
    return Report(
        kind="month", key=period, title=f"Month-end pack — {dt.date(*map(int, period.split('-')), 1):%B %Y}",
        subtitle=f"billing month {period} ({state})", as_of=as_of,
        facts=[("billing month", period), ("state", state), ("month end", month_end.isoformat()),
               ("data as of", f"{as_of:%Y-%m-%d %H:%M} UTC")],
        sections=[revenue, top, mrr, deferred, aging, payments, recon], figures=figs.all, notices=notices)
