"""Finance reports (exports/reports/) on the sample world: the daily flash and the month-end pack.

The session's `demo_world` (4 accounts, nights 2026-10-01 .. 2026-11-03, 2026-10 closed) is read,
never written: the reports go to temporary folders. What the tests prove:

  * every figure of every report equals the mart column it names (figures.json / data-figure),
    and every figure shown on the page is one of them, with the same text;
  * golden figures equal independent SQL over other marts and the Stripe intermediates, and the
    billing system's own invoice totals (sources/expected_invoices.json): billed, collected,
    refunded, revenue (month to date and the previous month), usage, MRR/ARR, aging, revenue by
    product, findings per check, items at risk;
  * the page loads in headless Chromium with no console message, references nothing outside
    itself and shows every chart with its marks; the console check catches a broken page;
  * every cell of every table file (CSV) is the mart value its table's source names: the test
    reads the mart rows itself and matches them one to one with the file's rows, money in minor
    units, percentages in basis points, counts and quantities exactly; a changed cell fails it;
  * the PDF has the expected pages and text; every table is written as CSV and XLSX (same rows);
    the HTML, CSV and XLSX are byte-identical when built again;
  * the email reaches a real SMTP server (aiosmtpd, with login): HTML body, text part, the PDF
    attached; a refused login is an error that does not quote the password;
  * a day or month the warehouse cannot report yet, a bad kind, and a missing Chromium are clear
    errors, and a missing Chromium writes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import io
import json
import os
import re
import shutil
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from itertools import zip_longest
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import copy_world, free_port
from pypdf import PdfReader

from exports.reports import ReportResult, build_report, run_report, send_report
from exports.reports import charts as report_charts
from exports.reports.mail import ReportDeliveryError
from exports.reports.model import (
    Bps,
    Col,
    Figure,
    SourceRows,
    TableSource,
    figure_text,
    group_digits,
    money_text,
)
from exports.reports.pdf import run_chromium
from meterline.config import load_config
from meterline.errors import IntervalError, NoBillingPeriodError, StageError
from meterline.warehouse import Connection, connect

LAST_NIGHT = "2026-11-03"
MONTH_END = "2026-10-31"
PERIOD = "2026-10"
SMTP_USER = "reports"
SMTP_PASSWORD = "pw-Report-Secret-5521"



def world_test(fn: Any) -> Any:
    """A test on the shared demo world (conftest's demo_world): slow."""
    return pytest.mark.slow(fn)



# ----------------------------------------------------------------------------------- fixtures


def world_config(world: Path, tmp: Path, extra: list[str] | None = None,
                 env: dict[str, str] | None = None) -> Any:
    """A config reading the shared world's warehouse and writing exports under `tmp`."""
    tmp.mkdir(parents=True, exist_ok=True)
    warehouse = (world / ".meterline" / "warehouse.duckdb").resolve()
    lines = ["[warehouse]", f'url = "duckdb:///{warehouse}"', "[pipeline]",
             f'exports_dir = "{tmp / "exports"}"', f'state_dir = "{tmp / "state"}"', *(extra or [])]
    (tmp / "meterline.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(tmp / "meterline.toml", env=env or {})


@pytest.fixture(scope="module")
def built(demo_world: Path, chromium: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The daily flash of the last night and of October's last day, and October's month-end
    pack, built once (with timings)."""
    base = tmp_path_factory.mktemp("reports")
    cfg = world_config(demo_world, base / "cfg")
    out: dict[str, Any] = {"cfg": cfg, "timings": {}}
    with connect(cfg.warehouse, read_only=True) as conn:
        for name, kind, when, with_pdf in (("daily", "daily", LAST_NIGHT, True),
                                           ("month", "month", PERIOD, True),
                                           ("month_end_day", "daily", MONTH_END, False)):
            t0 = time.monotonic()
            out[name] = build_report(conn, cfg, kind, when, base / when, with_pdf=with_pdf)
            out["timings"][name] = round(time.monotonic() - t0, 2)
    print("report build seconds:", out["timings"])
    return out


@pytest.fixture
def conn(demo_world: Path, tmp_path: Path) -> Iterator[Connection]:
    cfg = world_config(demo_world, tmp_path / "read-only")
    with connect(cfg.warehouse, read_only=True) as c:
        yield c


def expected_invoices(world: Path, period: str = PERIOD) -> list[dict[str, Any]]:
    doc = json.loads((world / "sources" / "expected_invoices.json").read_text(encoding="utf-8"))
    return [i for i in doc if i["period"] == period]


def figs(result: ReportResult, prefix: str) -> dict[str, Figure]:
    return {k: f for k, f in result.figures.items() if k.startswith(prefix)}


def by_currency(rows: list[tuple]) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in rows}


# ----------------------------------------------------------------------------------- figures


@world_test
@pytest.mark.parametrize("name", ["daily", "month", "month_end_day"])
def test_every_figure_is_its_mart_column(built: dict[str, Any], conn: Connection, name: str) -> None:
    result: ReportResult = built[name]
    assert len(result.figures) > 40
    for fig in result.figures.values():
        where = " AND ".join(f"{k} = ?" for k, _ in fig.key)
        rows = conn.fetchall(f"SELECT {fig.column} FROM {fig.mart} WHERE {where}", [v for _, v in fig.key])
        assert len(rows) == 1, (fig.id, fig.mart, fig.key, rows)
        value = rows[0][0]
        assert (None if value is None else int(value)) == fig.value, (fig.id, value, fig.value)
    # figures.json says the same
    doc = json.loads((result.out_dir / "figures.json").read_text())
    assert {f["id"]: f["value"] for f in doc["figures"]} == {k: f.value for k, f in result.figures.items()}


class _Page(HTMLParser):
    """Collects data-figure texts, tables, charts and their marks, and every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, list[str]] = defaultdict(list)
        self.charts: dict[str, int] = {}
        self.tables: list[str] = []
        self.links: list[str] = []
        self.tags: Counter[str] = Counter()
        self._open: list[tuple[str, str | None]] = []
        self._text: dict[int, list[str]] = {}
        self._chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] += 1
        for key in ("src", "href"):
            if a.get(key):
                self.links.append(a[key] or "")
        if tag == "svg" and "chart" in (a.get("class") or ""):
            self._chart = a["data-chart"] or ""
            self.charts[self._chart] = 0
        if self._chart is not None and "mark" in (a.get("class") or ""):
            self.charts[self._chart] += 1
        if a.get("data-table") and tag == "table":
            self.tables.append(a["data-table"] or "")
        self._open.append((tag, a.get("data-figure")))
        if a.get("data-figure"):
            self._text[len(self._open)] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._chart = None
        while self._open:
            depth = len(self._open)
            open_tag, fig = self._open.pop()
            if fig is not None:
                self.figures[fig].append("".join(self._text.pop(depth)).strip())
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for depth in self._text:
            self._text[depth].append(data)


def parse_page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@world_test
@pytest.mark.parametrize("name", ["daily", "month"])
def test_every_figure_on_the_page_is_a_mart_figure(built: dict[str, Any], name: str) -> None:
    result: ReportResult = built[name]
    page = parse_page(result.html.read_text(encoding="utf-8"))
    assert set(page.figures) == set(result.figures), set(page.figures) ^ set(result.figures)
    for fig_id, texts in page.figures.items():
        assert texts and all(t == figure_text(result.figures[fig_id]) for t in texts), (fig_id, texts)


# ----------------------------------------------------------------------------------- golden figures


@world_test
def test_golden_daily_flash_of_the_last_night(built: dict[str, Any], conn: Connection, demo_world: Path) -> None:
    daily: ReportResult = built["daily"]
    f = daily.figures
    nov = [dt.datetime(2026, 11, 1), dt.datetime(2026, 11, 4)]
    collected = by_currency(conn.fetchall(
        'SELECT currency, sum(amount_minor) FROM "intermediate"."int_stripe_charges_latest" '
        "WHERE charge_status = 'succeeded' AND created_at >= ? AND created_at < ? GROUP BY currency", nov))
    refunded = by_currency(conn.fetchall(
        'SELECT currency, sum(amount_minor) FROM "intermediate"."int_stripe_refunds_latest" '
        "WHERE refund_status = 'succeeded' AND created_at >= ? AND created_at < ? GROUP BY currency", nov))
    revenue = by_currency(conn.fetchall(
        'SELECT currency, sum(revenue_minor) FROM "marts"."fct_revenue_daily" '
        "WHERE revenue_date >= ? AND revenue_date <= ? GROUP BY currency", [dt.date(2026, 11, 1), dt.date(2026, 11, 3)]))
    revenue_oct = by_currency(conn.fetchall(
        'SELECT currency, sum(revenue_minor) FROM "marts"."fct_revenue_daily" '
        "WHERE revenue_date >= ? AND revenue_date <= ? GROUP BY currency", [dt.date(2026, 10, 1), dt.date(2026, 10, 3)]))
    currencies = {k.split(".")[1] for k in f if k.startswith("flash.")}
    assert currencies == {i["currency"] for i in expected_invoices(demo_world)}
    assert sum(collected.values()) > 0 and sum(revenue.values()) != 0
    for cur in currencies:
        assert f[f"flash.{cur}.collected.mtd"].value == collected.get(cur, 0), cur
        assert f[f"flash.{cur}.refunded.mtd"].value == refunded.get(cur, 0), cur
        assert f[f"flash.{cur}.revenue.mtd"].value == revenue.get(cur, 0), cur
        assert f[f"flash.{cur}.revenue.prev_mtd"].value == revenue_oct.get(cur, 0), cur
        # no invoice is dated in November yet (October's are dated 2026-10-31)
        assert f[f"flash.{cur}.billed.mtd"].value == 0
        prev, now = f[f"flash.{cur}.revenue.prev_mtd"].value, f[f"flash.{cur}.revenue.mtd"].value
        if prev:
            bps = f[f"flash.{cur}.revenue.change_bps"].value
            assert abs(bps * abs(prev) - (now - prev) * 10000) <= abs(prev) // 2 + 1, (cur, bps)
    # usage of the day per category = metering's accepted quantity in the daily reconciliation mart
    usage_day = dict(conn.fetchall(
        'SELECT category, sum(metering_quantity) FROM "marts"."rec_usage_daily" WHERE day = ? '
        "GROUP BY category", [dt.date(2026, 11, 3)]))
    shown = {k.split(".")[1]: fig.value for k, fig in f.items() if k.startswith("usage.") and k.endswith(".day")}
    assert shown == {k: int(v) for k, v in usage_day.items()}
    # open findings per check and status = the reconciliation marts' findings
    findings = Counter((c, s) for c, s in conn.fetchall('SELECT check_name, status FROM "marts"."rec_findings"'))
    shown_findings = {tuple(k.split(".")[1:3]): fig.value for k, fig in f.items()
                      if k.startswith("drift.") and k.endswith(".findings") and fig.value}
    assert shown_findings == dict(findings) and len(findings) >= 5
    # at risk: the latest open dispute of each charge; unpaid invoices that are uncollectible,
    # have a failed charge or are past the grace days (failed charges are their invoice's reason)
    at_risk = {r[0] for r in conn.fetchall(
        'SELECT dispute_id FROM (SELECT dispute_id, row_number() OVER (PARTITION BY charge_id '
        'ORDER BY created_at DESC, dispute_id DESC) AS n FROM "intermediate"."int_stripe_disputes_latest" '
        "WHERE dispute_status IN ('warning_needs_response', 'warning_under_review', 'needs_response', "
        "'under_review')) WHERE n = 1 "
        'UNION ALL SELECT i.invoice_id FROM "intermediate"."int_stripe_invoices_latest" i '
        "WHERE i.total_minor > i.amount_paid_minor AND (i.invoice_status = 'uncollectible' OR "
        "(i.invoice_status = 'open' AND (i.created_at <= ? OR i.invoice_id IN (SELECT invoice_id FROM "
        '"intermediate"."int_stripe_charges_latest" WHERE charge_status = \'failed\'))))',
        [dt.datetime(2026, 11, 2)])}
    with (daily.out_dir / "flash_at_risk.csv").open(newline="") as fh:
        assert {r["object_id"] for r in csv.DictReader(fh)} == at_risk


@world_test
def test_golden_daily_flash_of_the_months_last_day(built: dict[str, Any], conn: Connection,
                                                   demo_world: Path) -> None:
    f = built["month_end_day"].figures
    billed: dict[str, int] = defaultdict(int)
    for inv in expected_invoices(demo_world):
        billed[inv["currency"]] += inv["total_minor"]
    for cur, total in billed.items():
        # October's invoices are dated 2026-10-31: billed that day = the billing system's totals
        assert f[f"flash.{cur}.billed.day"].value == total == f[f"flash.{cur}.billed.mtd"].value
        assert f[f"flash.{cur}.billed.prev_mtd"].value is None  # no September in the warehouse
    metered = dict(conn.fetchall(
        'SELECT category, sum(metered_quantity) FROM "marts"."fct_billable_usage" WHERE period = ? '
        "GROUP BY category", [PERIOD]))
    shown = {k.split(".")[1]: fig.value for k, fig in f.items() if k.startswith("usage.") and k.endswith(".mtd")}
    assert shown == {k: int(v) for k, v in metered.items() if v}


@world_test
def test_golden_month_end_pack(built: dict[str, Any], conn: Connection, demo_world: Path) -> None:
    f = built["month"].figures
    invoices = expected_invoices(demo_world)
    billed: dict[str, int] = defaultdict(int)
    recurring: dict[str, int] = defaultdict(int)
    open_count: Counter[str] = Counter()
    for inv in invoices:
        billed[inv["currency"]] += inv["total_minor"]
        recurring[inv["currency"]] += sum(line["amount_minor"] for line in inv["lines"] if line["category"] != "credit")
        open_count[inv["currency"]] += inv["total_minor"] != 0
        acct = f"accounts.{inv['currency']}.{inv['account_id']}.billed"
        assert f[acct].value == inv["total_minor"], acct
    for cur in billed:
        assert f[f"month.{cur}.billed"].value == billed[cur]
        # the warehouse's first month: every account's MRR is carried in; MRR = the invoice's
        # recurring lines (everything but credits), ARR = 12 x MRR
        assert f[f"mrr.{cur}.opening"].value == 0
        assert f[f"mrr.{cur}.closing"].value == recurring[cur] == f[f"mrr.{cur}.carried_in"].value
        assert f[f"arr.{cur}.closing"].value == 12 * recurring[cur]
        # nothing was paid by October's end (Stripe invoices are created on November 1), and
        # nothing is due yet (dated October 31, due net 30 on November 30)
        assert f[f"aging.{cur}.current.open"].value == billed[cur]
        assert f[f"aging.{cur}.current.invoices"].value == open_count[cur]
        for bucket in ("1_30", "31_60", "61_90", "91_plus", "credit_balance"):
            assert f[f"aging.{cur}.{bucket}.open"].value == 0
    products = conn.fetchall(
        'SELECT currency, product, sum(revenue_minor) FROM "marts"."fct_revenue_daily" '
        "WHERE accounting_period = ? GROUP BY currency, product", [PERIOD])
    assert {(c, p): int(v) for c, p, v in products} == {
        tuple(k.split(".")[1:3]): fig.value for k, fig in f.items()
        if k.startswith("revenue.") and not k.endswith(".total")}
    totals = by_currency(conn.fetchall(
        'SELECT currency, sum(revenue_minor) FROM "marts"."fct_revenue_daily" WHERE accounting_period = ? '
        "GROUP BY currency", [PERIOD]))
    assert {c: f[f"revenue.{c}.total"].value for c in totals} == totals
    # October's reconciliation: findings per check and status = rec_findings of October's periods
    # and days, and of the payments and balance transactions whose Stripe object was created in it
    october = [dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1)]
    findings = Counter((c, s) for c, s in conn.fetchall(
        "SELECT check_name, status FROM \"marts\".\"rec_findings\" WHERE period = ? OR day LIKE ? "
        "OR (check_name IN ('payments', 'balance_transactions') AND object_id IN ("
        'SELECT charge_id FROM "intermediate"."int_stripe_charges_latest" WHERE created_at >= ? AND created_at < ? '
        'UNION ALL SELECT refund_id FROM "intermediate"."int_stripe_refunds_latest" '
        "WHERE created_at >= ? AND created_at < ? "
        'UNION ALL SELECT payout_id FROM "staging"."stg_stripe__payouts" WHERE created_at >= ? AND created_at < ?))',
        [PERIOD, f"{PERIOD}-%", *october, *october, *october]))
    shown = {tuple(k.split(".")[1:3]): fig.value for k, fig in f.items()
             if k.startswith("recon.") and k.endswith(".findings") and fig.value}
    assert shown == dict(findings) and len(findings) >= 5
    compared = conn.fetchone('SELECT count(*) FROM "marts"."rec_usage_daily" WHERE day >= ? AND day <= ?',
                             [dt.date(2026, 10, 1), dt.date(2026, 10, 31)])[0]
    assert sum(fig.value for k, fig in f.items() if k.startswith("recon.usage_daily.") and k.endswith(".compared")) \
        == compared


# ----------------------------------------------------------------------------------- the page in Chromium


def chromium_console(html: Path) -> tuple[str, list[str]]:
    """Load `html` in headless Chromium: the DOM after loading, and every console message."""
    res = run_chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom",
                        html.resolve().as_uri()])
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    return res.stdout, console


def test_the_console_check_catches_a_broken_page(chromium: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom"); missingFunction();</script></body></html>')
    _, console = chromium_console(bad)
    assert any("boom" in line for line in console) and any("missingFunction" in line for line in console)


@world_test
@pytest.mark.parametrize("name", ["daily", "month"])
def test_page_loads_without_console_errors_and_shows_its_charts(built: dict[str, Any], name: str) -> None:
    result: ReportResult = built[name]
    dom, console = chromium_console(result.html)
    assert console == []
    page = parse_page(dom)
    currencies = {k.split(".")[1] for k in result.figures if k.startswith(("flash.", "month."))}
    assert len(currencies) >= 3
    if name == "daily":
        expected = {f"flash_mtd_{c}" for c in currencies} | {"drift_by_check"} | {
            f"usage_{k.split('.')[1]}" for k in result.figures if k.startswith("usage.") and k.endswith(".day")}
    else:
        expected = ({f"revenue_products_{c}" for c in currencies} | {f"top_accounts_{c}" for c in currencies}
                    | {f"mrr_bridge_{c}" for c in currencies} | {f"aging_{c}" for c in currencies})
    assert expected <= set(page.charts), expected - set(page.charts)
    assert all(page.charts[c] > 0 for c in expected), {c: page.charts[c] for c in expected}
    # self-contained: no script, image, stylesheet link or frame; links only inside the page
    assert not {"script", "img", "link", "iframe", "object"} & set(page.tags)
    assert all(link.startswith("#") for link in page.links), page.links
    assert set(page.tables) <= set(result.tables) and page.tables


@world_test
def test_invoices_at_risk_end_to_end(demo_world: Path, tmp_path: Path) -> None:
    """The sample world has nothing at risk; on a copy, an inquiry then an open dispute on one
    charge, an open Stripe invoice past its grace days, a failed charge on it and its retry, and a
    failed charge with no invoice come through the marts into the flash: the money at risk is
    the disputed charge once and the invoice's amount due once."""
    from meterline.dbt import run_dbt

    world = copy_world(demo_world, tmp_path)
    cfg = load_config(world / "meterline.toml", env={})
    stamp = ["test_batch", dt.datetime(2026, 11, 3, 12), "stripe"]
    with connect(cfg.warehouse) as c:
        charge, customer, currency, amount = c.fetchone(
            'SELECT id, customer_id, currency, amount FROM "raw"."stripe_charges" '
            "WHERE status = 'succeeded' ORDER BY id LIMIT 1")
        account = c.fetchone('SELECT account_id FROM "marts"."dim_accounts" WHERE stripe_customer_id = ?',
                             [customer])[0]
        c.execute('INSERT INTO "raw"."stripe_disputes" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                  ["dp_test_inquiry", charge, amount, currency, "warning_needs_response", "fraudulent",
                   dt.datetime(2026, 11, 1, 10), "{}", *stamp])
        c.execute('INSERT INTO "raw"."stripe_disputes" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                  ["dp_test_open", charge, amount, currency, "needs_response", "fraudulent",
                   dt.datetime(2026, 11, 2, 10), "{}", *stamp])
        c.execute('INSERT INTO "raw"."stripe_invoices" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                  ["in_test_open", customer, account, "2026-09", currency, "open", 5000, 5000, 1000,
                   dt.datetime(2026, 11, 1, 3), "{}", *stamp])
        for charge_id, invoice, at in (("ch_test_failed", "in_test_open", dt.datetime(2026, 11, 2, 9)),
                                       ("ch_test_retry", "in_test_open", dt.datetime(2026, 11, 3, 9)),
                                       ("ch_test_no_invoice", None, dt.datetime(2026, 11, 2, 11))):
            c.execute('INSERT INTO "raw"."stripe_charges" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                      [charge_id, customer, invoice, 4000, 0, currency, "failed", None, at, "{}", *stamp])
    res = run_dbt(cfg, "build", extra=["--select", "fin_payment_events", "fin_payment_events_summary"])
    assert res.success, res.failures
    with connect(cfg.warehouse) as c:  # this process's dbt run has the file open read-write
        daily = build_report(c, cfg, "daily", LAST_NIGHT, tmp_path / "out", with_pdf=False)
    with (daily.out_dir / "flash_at_risk.csv").open(newline="") as fh:
        shown = {r["object_id"]: (r["kind"], r["account_id"], r["currency"], r["reason"])
                 for r in csv.DictReader(fh)}
    # the inquiry before the dispute, the failed charges and the one without an invoice are not
    # more money at risk
    assert shown == {"dp_test_open": ("dispute", account, currency, "open dispute"),
                     "in_test_open": ("unpaid invoice", account, currency, "payment failed (2 failed attempts)")}
    f = daily.figures
    assert (f[f"at_risk.{currency}.dispute.amount"].value, f[f"at_risk.{currency}.dispute.count"].value) == (amount, 1)
    assert not any(k.startswith(f"at_risk.{currency}.failed_payment.") for k in f)
    assert (f[f"at_risk.{currency}.unpaid_invoice.amount"].value,
            f[f"at_risk.{currency}.unpaid_invoice.count"].value) == (5000 - 1000, 1)
    assert (f[f"at_risk.{currency}.total.amount"].value, f[f"at_risk.{currency}.total.count"].value) \
        == (amount + 5000 - 1000, 2)


# ----------------------------------------------------------------------------------- PDF and files


@world_test
@pytest.mark.parametrize("name, pages, needles", [
    ("daily", (2, 10), ["Daily flash", "Billings and collections", "Usage by data category", "Open drift",
                        "Invoices at risk"]),
    ("month", (4, 16), ["Month-end pack", "Revenue by product", "MRR and ARR", "Deferred revenue roll-forward",
                        "Receivables aging", "Refunds and disputes", "Reconciliation of 2026-10"]),
])
def test_pdf_pages_and_text(built: dict[str, Any], name: str, pages: tuple[int, int], needles: list[str]) -> None:
    result: ReportResult = built[name]
    assert result.pdf is not None and result.pdf.read_bytes().startswith(b"%PDF")
    reader = PdfReader(result.pdf)
    assert pages[0] <= len(reader.pages) <= pages[1], len(reader.pages)
    texts = [p.extract_text() for p in reader.pages]
    assert all(t.strip() for t in texts), "a blank page"
    # NFKC: the fonts on some machines set "fl" as one ligature glyph, extracted as U+FB02
    text = unicodedata.normalize("NFKC", " ".join(" ".join(texts).split()))
    for needle in needles:
        assert needle in text, needle
    # a headline figure, as the page shows it
    cur = "USD"
    key = f"flash.{cur}.revenue.mtd" if name == "daily" else f"month.{cur}.revenue"
    assert figure_text(result.figures[key]) in text


@world_test
@pytest.mark.parametrize("name", ["daily", "month"])
def test_every_table_is_csv_and_xlsx_with_the_same_rows(built: dict[str, Any], name: str) -> None:
    result: ReportResult = built[name]
    assert result.tables
    for stem, paths in result.tables.items():
        with paths["csv"].open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        book = openpyxl.load_workbook(paths["xlsx"], read_only=True)
        data = [[("" if v is None else v) for v in row] for row in book["Data"].iter_rows(values_only=True)]
        assert data[0] == rows[0], stem
        assert len(data) == len(rows), stem
        for csv_row, xlsx_row in zip(rows[1:], data[1:], strict=True):
            for a, b in zip_longest(csv_row, xlsx_row, fillvalue=""):
                if isinstance(b, int | float) and not isinstance(b, bool):
                    assert a.replace(",", "") and float(a) == pytest.approx(float(b)), (stem, a, b)
                elif isinstance(b, dt.datetime):
                    assert a.startswith(b.date().isoformat()), (stem, a, b)
                else:
                    assert a == str(b), (stem, a, b)


@world_test
def test_a_table_file_holds_its_mart_rows(built: dict[str, Any], conn: Connection) -> None:
    month: ReportResult = built["month"]
    with month.tables["pack_revenue_by_product"]["csv"].open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["product"] != "total"]
    exps = dict(conn.fetchall('SELECT currency, minor_unit_exponent FROM "seeds"."currencies"'))
    mart = conn.fetchall('SELECT currency, product, revenue_minor FROM "marts"."fin_revenue_by_product" '
                         "WHERE period = ? ORDER BY currency, product_rank", [PERIOD])
    assert [(r["currency"], r["product"], r["revenue"]) for r in rows] == [
        (c, p, money_text(int(v), c, int(exps[c])).split(" ")[0].replace(",", "")) for c, p, v in mart]


# ----------------------------------------------------------------------------------- every table cell

NUMERIC_KINDS = ("number", "money", "bps", "amount")
DIGITS = re.compile(r"\d+(?:\.\d+)?")


def _numbers(text: str) -> set[Decimal]:
    return {Decimal(n) for n in DIGITS.findall(text)}


def _mart_cell(col: Col, row: dict[str, Any] | None, exps: dict[str, int]) -> Any:
    """What the file must show for `col` of mart row `row`, as an exact value (money in minor
    units, a percentage in basis points); "" for an empty cell."""
    if col.kind == "const":
        assert not re.search(r"\d", col.value or ""), f"a constant cell is a number: {col.value!r}"
        return ("text", col.value) if col.value else ""
    if row is None:
        return ""
    value = row[col.column]  # a KeyError: the column is not in the mart
    if value is None or (col.shown_if and not row[col.shown_if]):
        return ""
    if col.kind in ("number", "money", "bps"):
        assert not isinstance(value, bool | str | float) and value == int(value), (col, value)
        return (col.kind, int(value))
    if col.kind == "amount":
        unit = row[col.currency]
        if unit in exps and value == int(value):
            return ("amount", Decimal(int(value)).scaleb(-exps[unit]), "", exps[unit])
        return ("amount", Decimal(value), unit or "", None)
    if col.kind == "date":
        return ("text", (value.date() if isinstance(value, dt.datetime) else value).isoformat())
    if col.kind == "label":
        return ("text", dict(col.labels)[value]) if value in dict(col.labels) else ("no label for", value)
    if col.kind == "words":
        return ("text", str(value).replace("_", " "))
    assert col.kind == "text", col
    return ("text", value.isoformat() if isinstance(value, dt.date) else str(value))


def _file_cell(col: Col, text: str, row: dict[str, str], columns: dict[str, Col], exps: dict[str, int]) -> Any:
    """The value a file cell says, read the same way (money with its row's currency's exponent)."""
    if text == "":
        return ""
    if col.kind == "number":
        return ("number", int(text)) if re.fullmatch(r"-?\d+", text) else ("unreadable", text)
    if col.kind == "money":
        shown = [n for n, c in columns.items() if c.kind == "text" and c.column == col.currency]
        exp = exps.get(row[shown[0]]) if shown else None
        decimals = text.partition(".")[2]
        if exp is None or not re.fullmatch(r"-?\d+(\.\d+)?", text) or len(decimals) != exp:
            return ("unreadable money", text)
        return ("money", int(Decimal(text).scaleb(exp)))
    if col.kind == "bps":
        return ("bps", int(Decimal(text).scaleb(2))) if re.fullmatch(r"-?\d+\.\d\d", text) else ("unreadable", text)
    if col.kind == "amount":
        m = re.fullmatch(r"(-?[\d,]+(?:\.(\d+))?)(?: (.+))?", text)
        if not m:
            return ("unreadable", text)
        return ("amount", Decimal(m.group(1).replace(",", "")), m.group(3) or "",
                None if m.group(3) else len(m.group(2) or ""))
    return ("text", text)


def check_table_file(conn: Connection, source: TableSource, path: Path,
                     exps: dict[str, int]) -> tuple[list[str], Counter[str]]:
    """Match the rows of a table file one to one with the mart rows its source names, every
    cell compared. Returns the problems and what was compared (cells by kind)."""
    with path.open(newline="", encoding="utf-8") as fh:
        header, *lines = list(csv.reader(fh))
    problems: list[str] = []
    compared: Counter[str] = Counter()
    parts: list[tuple[SourceRows, list[str], dict[tuple, list[dict[str, Any] | None]]]] = []
    for part in source.rows:
        cols = dict(part.columns)
        assert len(cols) == len(part.columns), part.columns
        fixed = [n for n, c in part.columns if c.kind != "free"]
        rows = conn.fetch_dicts(f"SELECT * FROM {source.mart}" + (f" WHERE {part.where}" if part.where else ""),
                                list(part.params))
        expected: dict[tuple, list[dict[str, Any] | None]] = defaultdict(list)
        if part.pivot is None:
            names = [n for n, _ in part.columns]
            for r in rows:
                expected[tuple(_mart_cell(cols[n], r, exps) for n in fixed)].append(r)
        else:
            by, cell = part.pivot
            values = sorted({r[by] for r in rows})
            names = [*(n for n, _ in part.columns), *values]
            grouped: dict[tuple, dict[Any, dict[str, Any]]] = defaultdict(dict)
            for r in rows:
                key = tuple(_mart_cell(cols[n], r, exps) for n in fixed)
                assert r[by] not in grouped[key], (source.mart, key, r[by])
                grouped[key][r[by]] = r
            for key, by_value in grouped.items():
                expected[key + tuple(_mart_cell(cell, by_value.get(v), exps) for v in values)].append(None)
        if header != names:
            problems.append(f"{path.name}: columns {header}, its source {source.mart} gives {names}")
            return problems, compared
        parts.append((part, fixed, expected))

    def read(part: SourceRows, fixed: list[str], row: dict[str, str]) -> tuple:
        cols = dict(part.columns)
        out = tuple(_file_cell(cols[n], row[n], row, cols, exps) for n in fixed)
        if part.pivot is not None:
            out += tuple(_file_cell(part.pivot[1], row[v], row, cols, exps) for v in header[len(part.columns):])
        return out

    unmatched: list[tuple[int, dict[str, str]]] = []
    for number, line in enumerate(lines, start=2):
        row = dict(zip(header, line, strict=True))
        for part, fixed, expected in parts:
            got = read(part, fixed, row)
            if not expected.get(got):
                continue
            mart_row = expected[got].pop()
            names = [*fixed, *header[len(part.columns):]] if part.pivot else fixed
            for name, value in zip(names, got, strict=True):
                col = part.pivot[1] if name not in dict(part.columns) else dict(part.columns)[name]
                if value != "":
                    compared[col.kind] += 1
            for name, col in part.columns:
                if col.kind == "free" and row[name]:
                    assert mart_row is not None
                    allowed = set().union(*(_numbers(str(mart_row[c])) for c in (col.column, *col.also)
                                            if mart_row[c] is not None))
                    stray = _numbers(row[name]) - allowed
                    compared["free"] += 1
                    if stray:
                        problems.append(f"{path.name} line {number}, {name}: {row[name]!r} has numbers "
                                        f"{sorted(stray)} that are not in {source.mart}.{col.column}/{col.also}")
            break
        else:
            unmatched.append((number, row))
    left = [(part, fixed, key) for part, fixed, expected in parts for key, rs in expected.items() for _ in rs]
    for number, row in unmatched:
        # the closest mart row, to name the cells that differ
        scores = [sum(a == b for a, b in zip(read(part, fixed, row), key, strict=True))
                  for part, fixed, key in left]
        best = left[scores.index(max(scores))] if left else None
        if best is None:
            problems.append(f"{path.name} line {number}: {row} is no row of {source.mart}")
            continue
        part, fixed, key = best
        names = [*fixed, *header[len(part.columns):]] if part.pivot else fixed
        diff = {n: (a, b) for n, a, b in zip(names, read(part, fixed, row), key, strict=True) if a != b}
        problems.append(f"{path.name} line {number}: no row of {source.mart} where {part.where!r} "
                        f"{part.params}; closest differs in {{column: (file, mart)}} {diff}")
    if len(left) > len(unmatched):
        problems.append(f"{path.name}: {len(left) - len(unmatched)} row(s) of {source.mart} are not in the "
                        f"file, e.g. {[k for _, _, k in left][:3]}")
    return problems, compared


def _changed(text: str) -> str:
    """`text` with its last digit changed."""
    i = max(i for i, ch in enumerate(text) if ch.isdigit())
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]


@world_test
@pytest.mark.parametrize("name", ["daily", "month", "month_end_day"])
def test_every_table_cell_is_its_mart_value(built: dict[str, Any], conn: Connection, tmp_path: Path,
                                            name: str) -> None:
    """Every table of the report: the file's rows are the rows of the mart its source names (its
    filter), one to one, and every cell is the value of the mart column the source names for
    it: money in minor units of the row's currency (seeds.currencies' exponent), percentages in
    basis points, counts, quantities and days exactly, labels and ids as the mart has them; a
    number in free text must be in the mart columns it is made from, and a constant cell (a
    "total" label) is never a number. Then, on copies, a changed cell or an added column fails."""
    result: ReportResult = built[name]
    exps = {c: int(e) for c, e in conn.fetchall(
        'SELECT currency, minor_unit_exponent FROM "seeds"."currencies" WHERE minor_unit_exponent IS NOT NULL')}
    assert set(result.sources) == set(result.tables) and len(result.tables) >= 7
    totals: Counter[str] = Counter()
    for stem, source in result.sources.items():
        problems, compared = check_table_file(conn, source, result.tables[stem]["csv"], exps)
        assert problems == [], problems
        totals.update(compared)
    print(name, len(result.tables), "tables, cells compared by kind:", dict(totals))
    numeric = sum(totals[k] for k in NUMERIC_KINDS)
    assert numeric >= {"daily": 150, "month": 200, "month_end_day": 150}[name], totals
    assert totals["money"] and totals["number"] and totals["bps"]

    # the check can fail: in a copy of each table file, one number changed; one column added
    for stem, source in result.sources.items():
        path = result.tables[stem]["csv"]
        with path.open(newline="", encoding="utf-8") as fh:
            header, *lines = list(csv.reader(fh))
        kinds = {n: c.kind for part in reversed(source.rows) for n, c in part.columns}
        spot = next(((i, j) for i, line in enumerate(lines) for j, text in enumerate(line)
                     if kinds.get(header[j], "number") in NUMERIC_KINDS and re.search(r"\d", text)), None)
        if spot is None:
            continue
        i, j = spot
        lines[i][j] = _changed(lines[i][j])
        copy = tmp_path / f"{stem}.csv"
        with copy.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh, lineterminator="\n").writerows([header, *lines])
        problems, _ = check_table_file(conn, source, copy, exps)
        assert any(f"line {i + 2}" in p and repr(header[j]) in p for p in problems), (stem, problems)
    copy = tmp_path / "extra.csv"
    shutil.copy(result.tables[next(iter(result.tables))]["csv"], copy)
    with copy.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with copy.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([[*r, "1" if n else "extra"] for n, r in enumerate(rows)])
    assert check_table_file(conn, next(iter(result.sources.values())), copy, exps)[0]


@world_test
def test_building_again_gives_identical_files(built: dict[str, Any], tmp_path: Path) -> None:
    first: ReportResult = built["daily"]
    with connect(built["cfg"].warehouse, read_only=True) as c:
        again = build_report(c, built["cfg"], "daily", LAST_NIGHT, tmp_path / "again", with_pdf=False)
    names = sorted(p.name for p in again.files)
    assert names == sorted(p.name for p in first.files if p.suffix != ".pdf")
    for name in names:
        assert (first.out_dir / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


# ----------------------------------------------------------------------------------- email


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.rcpts: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if not session.authenticated:
            return "530 Authentication required"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.rcpts.append(list(envelope.rcpt_tos))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtpd() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_require_tls=False)
    controller.start()
    yield inbox, port
    controller.stop()


def smtp_config(world: Path, tmp: Path, port: int, password: str = SMTP_PASSWORD) -> Any:
    return world_config(world, tmp, extra=[
        "[alerts]", 'smtp_host = "127.0.0.1"', f"smtp_port = {port}", f'smtp_user = "{SMTP_USER}"',
        'smtp_from = "meterline@example.com"', "timeout_seconds = 5",
        "[reports]", 'smtp_to = "cfo@example.com, controller@example.com"'],
        env={"METERLINE_ALERTS_SMTP_PASSWORD": password})


@world_test
def test_email_has_the_page_as_body_and_the_pdf_attached(built: dict[str, Any], smtpd: tuple[Inbox, int],
                                                         demo_world: Path, tmp_path: Path) -> None:
    inbox, port = smtpd
    cfg = smtp_config(demo_world, tmp_path, port)
    month: ReportResult = built["month"]
    sent = send_report(cfg, month)
    assert sent["sent"] and sent["to"] == ["cfo@example.com", "controller@example.com"]
    assert len(inbox.messages) == 1 and sorted(inbox.rcpts[0]) == sent["to"]
    msg = inbox.messages[0]
    assert msg["Subject"] == "meterline: Month-end pack — October 2026"
    assert msg["From"] == "meterline@example.com"
    html_part = msg.get_body(preferencelist=("html",))
    text_part = msg.get_body(preferencelist=("plain",))
    assert html_part.get_content().replace("\r\n", "\n").strip() == month.html.read_text(encoding="utf-8").strip()
    assert "Month-end pack" in text_part.get_content()
    assert figure_text(month.figures["month.USD.revenue"]) in text_part.get_content()
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["month-end-pack-2026-10.pdf"]
    pdf_bytes = attachments[0].get_content()
    assert attachments[0].get_content_type() == "application/pdf"
    assert pdf_bytes == month.pdf.read_bytes()
    assert len(PdfReader(io.BytesIO(pdf_bytes)).pages) == len(PdfReader(month.pdf).pages)


@world_test
def test_a_refused_login_is_an_error_without_the_password(built: dict[str, Any], smtpd: tuple[Inbox, int],
                                                          demo_world: Path, tmp_path: Path) -> None:
    inbox, port = smtpd
    cfg = smtp_config(demo_world, tmp_path, port, password="wrong-" + SMTP_PASSWORD)
    with pytest.raises(ReportDeliveryError) as err:
        send_report(cfg, built["daily"])
    assert "535" in str(err.value) and SMTP_PASSWORD not in str(err.value)
    assert inbox.messages == []


@world_test
def test_run_report_writes_the_folder_and_emails_it(smtpd: tuple[Inbox, int], demo_world: Path,
                                                    tmp_path: Path, chromium: str) -> None:
    inbox, port = smtpd
    cfg = smtp_config(demo_world, tmp_path, port)
    t0 = time.monotonic()
    summary = run_report(cfg, "daily", LAST_NIGHT)
    print(f"run_report daily with email: {time.monotonic() - t0:.1f} s")
    folder = tmp_path / "exports" / "reports" / LAST_NIGHT
    assert summary["dir"] == str(folder) and summary["email"]["sent"]
    assert {"daily-flash-2026-11-03.html", "daily-flash-2026-11-03.pdf", "figures.json",
            "flash_money.csv", "flash_money.xlsx"} <= set(os.listdir(folder))
    assert [m["Subject"] for m in inbox.messages] == ["meterline: Daily flash — Tuesday 03 November 2026"]
    # not configured: the report is still written, the summary says why nothing was sent
    plain = world_config(demo_world, tmp_path / "plain")
    summary = run_report(plain, "daily", LAST_NIGHT)
    assert summary["email"] == {"sent": False, "reason": "not configured: set [alerts] smtp_host and [reports] smtp_to"}
    assert len(inbox.messages) == 1


@world_test
def test_the_dags_email_a_report_once_per_content(smtpd: tuple[Inbox, int], demo_world: Path,
                                                 tmp_path: Path, chromium: str) -> None:
    """run_report(once=True) (the DAGs' finance_report): a retried task or a rerun of the date
    emails nothing twice; what it sent is in ledger.report_log, and only that log stops it."""
    inbox, port = smtpd
    world = copy_world(demo_world, tmp_path / "copy")
    cfg = smtp_config(world, tmp_path, port)
    first = run_report(cfg, "daily", LAST_NIGHT, read_only=False, once=True)
    again = run_report(cfg, "daily", LAST_NIGHT, read_only=False, once=True)
    assert first["email"]["sent"] and not again["email"]["sent"], again
    assert again["email"]["reason"].startswith("already sent at")
    assert len(inbox.messages) == 1
    with connect(cfg.warehouse) as conn:
        log = conn.fetch_dicts('SELECT kind, report_key, content_sha256 FROM "ledger"."report_log"')
        assert [(r["kind"], r["report_key"]) for r in log] == [("daily", LAST_NIGHT)]
        conn.execute('DELETE FROM "ledger"."report_log"')
    assert run_report(cfg, "daily", LAST_NIGHT, read_only=False, once=True)["email"]["sent"]
    assert len(inbox.messages) == 2
    with pytest.raises(ValueError, match="needs read_only=False"):
        run_report(cfg, "daily", LAST_NIGHT, once=True)


# ----------------------------------------------------------------------------------- errors


@world_test
@pytest.mark.parametrize("kind, when, message", [
    ("daily", "2026-11-04", "no complete data for 2026-11-04 yet"),
    ("daily", "2026-09-30", "before the first billing period"),
    ("daily", "2026-11-3", "needs a date YYYY-MM-DD"),
    ("month", "2026-11", "2026-11 is not complete"),
    ("month", "2026-13", "needs a period YYYY-MM"),
    ("weekly", "2026-11-03", "must be daily or month"),
])
def test_what_cannot_be_reported_yet_is_a_clear_error(conn: Connection, built: dict[str, Any], tmp_path: Path,
                                                      kind: str, when: str, message: str) -> None:
    with pytest.raises(IntervalError, match=re.escape(message)) as err:
        build_report(conn, built["cfg"], kind, when, tmp_path / "out", with_pdf=False)
    assert not (tmp_path / "out").exists()
    # only "before the first billing period" is nothing to report (the nightly DAG skips it);
    # data not there yet is an error the DAG fails on
    assert isinstance(err.value, NoBillingPeriodError) == ("first billing period" in message)


@world_test
def test_without_chromium_nothing_is_written(conn: Connection, built: dict[str, Any], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(StageError, match=re.escape("apt-get install -y chromium")):
        build_report(conn, built["cfg"], "daily", LAST_NIGHT, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "read-only"]  # no out, no .out.tmp


# ----------------------------------------------------------------------------------- no warehouse needed


def test_reports_config_section(tmp_path: Path) -> None:
    (tmp_path / "meterline.toml").write_text('[reports]\nsmtp_to = "a@example.com"\n')
    assert load_config(tmp_path / "meterline.toml", env={}).get("reports", "smtp_to") == "a@example.com"
    cfg = load_config(tmp_path / "meterline.toml", env={"METERLINE_REPORTS_SMTP_TO": "b@example.com"})
    assert cfg.get("reports", "smtp_to") == "b@example.com"


def test_formatting_is_exact() -> None:
    assert money_text(-123456789, "USD", 2) == "-1,234,567.89 USD"
    assert money_text(5, "KWD", 3) == "0.005 KWD"
    assert money_text(5000, "JPY", 0) == "5,000 JPY"
    assert group_digits("1234.500") == "1,234.500"
    assert Bps(-1234).text() == "-12.34 %" and Bps(5).text() == "+0.05 %"
    assert Bps(10000, signed=False).text() == "100.00 %"


def test_charts_draw_each_value_and_handle_empty_and_negative() -> None:
    svg = report_charts.grouped_bars("g", "t", ["a", "b"], [("x", [5, -3]), ("y", [None, 2])], str)
    assert svg.count('class="mark"') == 3 and 'data-value="-3"' in svg and "n/a" in svg
    assert "no data" in report_charts.grouped_bars("g", "t", [], [], str)
    water = report_charts.waterfall("w", "t", [("open", 10, "total"), ("up", 5, "delta"), ("down", -7, "delta"),
                                               ("close", 8, "total")], str)
    assert water.count('class="mark"') == 4
    assert "every step is 0" in report_charts.waterfall("w", "t", [("open", 0, "total")], str)
    assert report_charts.hbars("h", "t", ["a"], [-1], str).count('data-value="-1"') == 1


@world_test
def test_the_cli_writes_the_month_pack(demo_world: Path, chromium: str, tmp_path: Path) -> None:
    """`meterline report month --date 2026-10 --no-send` as a user runs it, in a copy of the world."""
    from conftest import copy_world, demo_env, run_cli

    d = copy_world(demo_world, tmp_path)
    res = run_cli("report", "month", "--date", PERIOD, "--no-send", "--json", cwd=d, env=demo_env())
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    folder = d / "exports" / "reports" / PERIOD
    assert Path(out["dir"]) == folder.resolve() and out["email"]["sent"] is False
    names = {p.name for p in folder.iterdir()}
    assert any(n.endswith(f"-{PERIOD}.html") for n in names) and any(n.endswith(f"-{PERIOD}.pdf") for n in names)
    assert any(p.suffix == ".xlsx" for p in folder.iterdir()) and any(p.suffix == ".csv" for p in folder.iterdir())
    bad = run_cli("report", "month", "--date", "2026-11", "--no-send", cwd=d, env=demo_env())
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr


# ----------------------------------------------------------------------------------- three closed months
# conftest's three_month_world: clean, 6 accounts, seed 1, nights 2026-10-01 .. 2027-01-04, October
# (31 days), November (30) and December (31) closed, one unpaid invoice or more in each month.
# Month to date against a real previous month, MRR movements between months, receivables aged
# past 30 days and a 30-day month between two 31-day ones, all against independent sources: the
# billing system's invoices (sources/expected_invoices.json), Stripe's objects (sources/stripe/)
# and, for revenue, fct_revenue_daily summed over the calendar days.

THREE_MONTH_REPORTS = (("nov_pack", "month", "2026-11"), ("dec_pack", "month", "2026-12"),
                       ("nov_30", "daily", "2026-11-30"), ("dec_15", "daily", "2026-12-15"),
                       ("dec_30", "daily", "2026-12-30"), ("dec_31", "daily", "2026-12-31"))


@pytest.fixture(scope="module")
def built3(three_month_world: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world, _ = three_month_world
    base = tmp_path_factory.mktemp("reports3")
    cfg = world_config(world, base / "cfg")
    out: dict[str, Any] = {"cfg": cfg, "world": world}
    with connect(cfg.warehouse, read_only=True) as c:
        for name, kind, when in THREE_MONTH_REPORTS:
            out[name] = build_report(c, cfg, kind, when, base / when, with_pdf=False)
    return out


@pytest.fixture
def conn3(three_month_world: tuple[Path, dict], tmp_path: Path) -> Iterator[Connection]:
    cfg = world_config(three_month_world[0], tmp_path / "read-only")
    with connect(cfg.warehouse, read_only=True) as c:
        yield c


def billing_totals(world: Path, period: str) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for inv in expected_invoices(world, period):
        totals[inv["currency"]] += inv["total_minor"]
    return dict(totals)


def revenue_between(conn: Connection, first: dt.date, last: dt.date) -> dict[str, int]:
    return by_currency(conn.fetchall(
        'SELECT currency, sum(revenue_minor) FROM "marts"."fct_revenue_daily" '
        "WHERE revenue_date >= ? AND revenue_date <= ? GROUP BY currency", [first, last]))


@world_test
@pytest.mark.parametrize("name", [n for n, _, _ in THREE_MONTH_REPORTS])
def test_three_months_every_figure_and_cell_is_its_mart_value(built3: dict[str, Any], conn3: Connection,
                                                              name: str) -> None:
    result: ReportResult = built3[name]
    for fig in result.figures.values():
        where = " AND ".join(f"{k} = ?" for k, _ in fig.key)
        rows = conn3.fetchall(f"SELECT {fig.column} FROM {fig.mart} WHERE {where}", [v for _, v in fig.key])
        assert len(rows) == 1, (fig.id, fig.mart, fig.key, rows)
        assert (None if rows[0][0] is None else int(rows[0][0])) == fig.value, (fig.id, rows[0][0], fig.value)
    exps = {c: int(e) for c, e in conn3.fetchall(
        'SELECT currency, minor_unit_exponent FROM "seeds"."currencies" WHERE minor_unit_exponent IS NOT NULL')}
    for stem, source in result.sources.items():
        problems, _ = check_table_file(conn3, source, result.tables[stem]["csv"], exps)
        assert problems == [], (stem, problems)


@world_test
@pytest.mark.parametrize("name, day, prev_first, prev_last, billed_now, billed_prev", [
    # a 30-day month's last day compares with the whole 31-day month before it
    ("nov_30", dt.date(2026, 11, 30), dt.date(2026, 10, 1), dt.date(2026, 10, 31), "2026-11", "2026-10"),
    # a mid-month day with the same days of the previous month
    ("dec_15", dt.date(2026, 12, 15), dt.date(2026, 11, 1), dt.date(2026, 11, 15), None, None),
    # day 30 of a 31-day month: the whole 30-day month before (its invoices are dated its day 30)
    ("dec_30", dt.date(2026, 12, 30), dt.date(2026, 11, 1), dt.date(2026, 11, 30), None, "2026-11"),
    # a 31-day month's last day compares with the whole 30-day month before it
    ("dec_31", dt.date(2026, 12, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 30), "2026-12", "2026-11"),
])
def test_three_months_month_to_date_against_the_previous_month(
        built3: dict[str, Any], conn3: Connection, name: str, day: dt.date, prev_first: dt.date,
        prev_last: dt.date, billed_now: str | None, billed_prev: str | None) -> None:
    f = built3[name].figures
    world = built3["world"]
    currencies = {k.split(".")[1] for k in f if k.startswith("flash.")}
    assert currencies == {inv["currency"] for inv in expected_invoices(world, "2026-10")}
    revenue = revenue_between(conn3, day.replace(day=1), day)
    revenue_prev = revenue_between(conn3, prev_first, prev_last)
    now = billing_totals(world, billed_now) if billed_now else {}
    prev = billing_totals(world, billed_prev) if billed_prev else {}
    assert revenue and revenue_prev
    for cur in currencies:
        assert f[f"flash.{cur}.revenue.mtd"].value == revenue.get(cur, 0), cur
        assert f[f"flash.{cur}.revenue.prev_mtd"].value == revenue_prev.get(cur, 0), cur
        # invoices are dated their period's last day: billed is the billing system's totals then
        assert f[f"flash.{cur}.billed.mtd"].value == now.get(cur, 0), cur
        assert f[f"flash.{cur}.billed.prev_mtd"].value == prev.get(cur, 0), cur


def mrr_by_account(world: Path, period: str) -> dict[tuple[str, str], int]:
    """The billing system's recurring amount per (currency, account): every line but credits,
    never below zero (the MRR rule, DECISIONLOG.md "MRR")."""
    return {(inv["currency"], inv["account_id"]):
            max(0, sum(line["amount_minor"] for line in inv["lines"] if line["category"] != "credit"))
            for inv in expected_invoices(world, period)}


@world_test
@pytest.mark.parametrize("name, period, previous", [("nov_pack", "2026-11", "2026-10"),
                                                    ("dec_pack", "2026-12", "2026-11")])
def test_three_months_mrr_movements(built3: dict[str, Any], name: str, period: str, previous: str) -> None:
    f = built3[name].figures
    world = built3["world"]
    now, before = mrr_by_account(world, period), mrr_by_account(world, previous)
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    for key in now.keys() | before.keys():
        cur, new, old = key[0], now.get(key, 0), before.get(key, 0)
        expected[cur]["opening"] += old
        expected[cur]["closing"] += new
        move = ("expansion" if new > old > 0 else "contraction" if old > new > 0 else
                "churn" if old > 0 == new else "unchanged" if new == old else "new_or_reactivation")
        expected[cur][move] += new - old
    moved = set()
    for cur, e in expected.items():
        assert f[f"mrr.{cur}.opening"].value == e["opening"], cur
        assert f[f"mrr.{cur}.closing"].value == e["closing"], cur
        assert f[f"arr.{cur}.closing"].value == 12 * e["closing"], cur
        assert f[f"mrr.{cur}.expansion"].value == e["expansion"], cur
        assert f[f"mrr.{cur}.contraction"].value == e["contraction"], cur
        assert f[f"mrr.{cur}.churn"].value == e["churn"] == 0, cur  # every account stays
        assert f[f"mrr.{cur}.carried_in"].value == 0, cur  # not the warehouse's first month
        assert f[f"mrr.{cur}.new"].value == f[f"mrr.{cur}.reactivation"].value == 0, cur
        moved |= {m for m in ("expansion", "contraction") if e[m]}
    assert moved == {"expansion", "contraction"}, expected  # the world moves both ways


def stripe_unpaid(world: Path) -> dict[str, set[str]]:
    """Accounts whose Stripe invoice of a period is unpaid, per period (sources/stripe/)."""
    doc = json.loads((world / "sources" / "stripe" / "invoices.json").read_text(encoding="utf-8"))
    out: dict[str, set[str]] = defaultdict(set)
    for inv in doc:
        if inv["status"] == "open":
            out[inv["metadata"]["period"]].add(inv["metadata"]["account_id"])
    return out


@world_test
@pytest.mark.parametrize("name, ages", [
    # November 30: October's unpaid invoices (dated October 31, net 30) fall due that day: current
    ("nov_pack", {"2026-11": "current", "2026-10": "current"}),
    # December 31: December's are not due; November's are 1 day past due, October's 31 days
    ("dec_pack", {"2026-12": "current", "2026-11": "1_30", "2026-10": "31_60"}),
])
def test_three_months_receivables_aging(built3: dict[str, Any], name: str, ages: dict[str, str]) -> None:
    f = built3[name].figures
    world = built3["world"]
    unpaid = stripe_unpaid(world)
    latest = max(ages)
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for period, bucket in ages.items():
        for inv in expected_invoices(world, period):
            # the month's own invoices are not paid by its end (Stripe bills on the 1st); older
            # ones are open when Stripe never collected them
            if inv["total_minor"] and (period == latest or inv["account_id"] in unpaid[period]):
                expected[(inv["currency"], bucket)][0] += inv["total_minor"]
                expected[(inv["currency"], bucket)][1] += 1
    assert {b for _, b in expected} == set(ages.values()), expected  # each age is in this world
    for cur in {c for c, _ in expected}:
        for bucket in BUCKET_LABELS_3:
            amount, count = expected.get((cur, bucket), [0, 0])
            assert f[f"aging.{cur}.{bucket}.open"].value == amount, (cur, bucket)
            assert f[f"aging.{cur}.{bucket}.invoices"].value == count, (cur, bucket)


BUCKET_LABELS_3 = ("current", "1_30", "31_60", "61_90", "91_plus", "credit_balance")


@world_test
def test_three_months_rollforward(built3: dict[str, Any], conn3: Connection) -> None:
    """December's unbilled receivables: opening = November's closing (0: November was invoiced),
    recognized = December's revenue from invoice lines, billed = December's invoices' usage and
    fees, closing 0; nothing voided, no catch-up in a clean world; the same balance opens each
    month where the one before closed."""
    f = built3["dec_pack"].figures
    world = built3["world"]
    recognized = by_currency(conn3.fetchall(
        'SELECT currency, sum(revenue_minor) FROM "marts"."fct_revenue_daily" WHERE accounting_period = ? '
        "AND revenue_source = 'invoice_lines' GROUP BY currency", ["2026-12"]))
    invoiced: dict[str, int] = defaultdict(int)
    for inv in expected_invoices(world, "2026-12"):
        invoiced[inv["currency"]] += sum(line["amount_minor"] for line in inv["lines"] if line["category"] != "credit")
    for cur, amount in invoiced.items():
        key = f"rollforward.{cur}.unbilled_receivables"
        assert f[f"{key}.opening"].value == 0, cur
        assert f[f"{key}.recognized"].value == recognized[cur] == amount, cur
        assert f[f"{key}.billed"].value == amount, cur
        assert f[f"{key}.voided"].value == f[f"{key}.catchup"].value == 0, cur
        assert f[f"{key}.closing"].value == 0, cur
    rows = conn3.fetchall('SELECT currency, balance, accounting_period, opening_minor, closing_minor '
                          'FROM "marts"."fct_balance_rollforward" ORDER BY currency, balance, accounting_period')
    for before, after in zip(rows, rows[1:], strict=False):
        if before[:2] == after[:2]:
            assert after[3] == before[4], (before, after)
