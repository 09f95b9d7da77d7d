"""Accountant exports (exports/accounting.py): golden files, validation, amounts, determinism.

The golden files under tests/exports/golden/ were produced from `sample_inputs()` below and
checked by hand once (amounts, signs, dates, layouts; see docs/exports.md). CSV and JSON files
are compared byte for byte; XLSX files by the cell values read back with openpyxl (held in
golden/xlsx_cells.json), plus byte identity across two builds.

To regenerate the goldens after an intended change of output, run

    METERLINE_REGEN_GOLDEN=1 .venv/bin/pytest tests/exports/test_accounting.py

then review `git diff tests/exports/golden/` line by line before committing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import zipfile
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from exports import accounting
from exports.accounting import ExportOptions, build_accounting_exports, format_minor
from meterline.errors import ExportError, MeterlineError, StageError

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("METERLINE_REGEN_GOLDEN", "") not in ("", "0")
PERIOD = "2026-10"
CURRENCIES = {"USD": 2, "JPY": 0, "KWD": 3, "EUR": 2}

OCT31 = dt.date(2026, 10, 31)


def jl(line_id: str, entry_id: str, entry_type: str, currency: str, gl_key: str,
       gl_account: str | None, gl_name: str | None, debit: int, credit: int, *,
       day: dt.date = OCT31, account_id: str | None = "acct_a", product: str | None = None,
       memo: str = "", is_catchup: bool = False, service_period: str | None = "2026-10",
       reference: str | None = None, accounting_period: str = PERIOD) -> dict[str, Any]:
    return {
        "journal_line_id": line_id, "entry_id": entry_id, "entry_date": day,
        "accounting_period": accounting_period, "entry_type": entry_type,
        "account_id": account_id, "currency": currency, "gl_key": gl_key,
        "gl_account": gl_account, "gl_account_name": gl_name, "product": product,
        "debit_minor": debit, "credit_minor": credit, "memo": memo, "is_catchup": is_catchup,
        "service_period": service_period, "reference": reference,
    }


AR = ("receivables", "1200", "Accounts Receivable")
USAGE = ("revenue:usage", "4100", "Usage Revenue")
PLATFORM = ("revenue:platform", "4110", "Platform Fees")


def sample_journal() -> list[dict[str, Any]]:
    return [
        # A USD invoice: one receivable, two revenue lines.
        jl("jl-0001", "je-inv-001", "invoice", "USD", *AR, 12345, 0, memo="Invoice inv-001",
           reference="inv-001"),
        jl("jl-0002", "je-inv-001", "invoice", "USD", *USAGE, 0, 10000, product="api_calls",
           memo="Invoice inv-001: api_calls", reference="inv-001"),
        jl("jl-0003", "je-inv-001", "invoice", "USD", *PLATFORM, 0, 2345, product="platform",
           memo="Invoice inv-001: platform", reference="inv-001"),
        # JPY (exponent 0) and KWD (exponent 3) invoices.
        jl("jl-0004", "je-inv-002", "invoice", "JPY", *AR, 150000, 0, account_id="acct_b",
           memo="Invoice inv-002", reference="inv-002"),
        jl("jl-0005", "je-inv-002", "invoice", "JPY", *USAGE, 0, 150000, account_id="acct_b",
           product="api_calls", memo="Invoice inv-002: api_calls", reference="inv-002"),
        jl("jl-0006", "je-inv-003", "invoice", "KWD", *AR, 1234, 0, account_id="acct_c",
           memo="Invoice inv-003", reference="inv-003"),
        jl("jl-0007", "je-inv-003", "invoice", "KWD", *USAGE, 0, 1234, account_id="acct_c",
           product="api_calls", memo="Invoice inv-003: api_calls", reference="inv-003"),
        # A credit note: revenue debited (negative revenue), receivable credited. The memo
        # needs CSV quoting.
        jl("jl-0008", "je-cn-001", "credit_note", "USD", *USAGE, 500, 0,
           day=dt.date(2026, 10, 20), product="api_calls",
           memo='Credit note cn-001, "goodwill"', reference="cn-001"),
        jl("jl-0009", "je-cn-001", "credit_note", "USD", *AR, 0, 500,
           day=dt.date(2026, 10, 20), memo='Credit note cn-001, "goodwill"', reference="cn-001"),
        # A catch-up entry in the open period for late September usage.
        jl("jl-0010", "je-catchup-001", "catchup", "USD", "unbilled_receivables", "1300",
           "Unbilled Receivables", 750, 0, day=dt.date(2026, 10, 1), account_id="acct_d",
           memo="Late usage for 2026-09", is_catchup=True, service_period="2026-09"),
        jl("jl-0011", "je-catchup-001", "catchup", "USD", *USAGE, 0, 750,
           day=dt.date(2026, 10, 1), account_id="acct_d", product="api_calls",
           memo="Late usage for 2026-09", is_catchup=True, service_period="2026-09"),
        # A Stripe fee: no customer, GL name missing (QBO falls back to the code).
        jl("jl-0012", "je-fee-001", "stripe_fee", "USD", "stripe_fees", "6100", None, 37, 0,
           day=dt.date(2026, 10, 15), account_id=None, memo="Stripe fee ch_1",
           service_period=None, reference="txn_1"),
        jl("jl-0013", "je-fee-001", "stripe_fee", "USD", "stripe_balance", "1050",
           "Stripe Balance", 0, 37, day=dt.date(2026, 10, 15), account_id=None,
           memo="Stripe fee ch_1", service_period=None, reference="txn_1"),
        # One payout entry with a USD and a JPY part, each balanced: two import journals.
        jl("jl-0014", "je-payout-001", "payout", "USD", "bank", "1010", "Bank", 11000, 0,
           day=dt.date(2026, 10, 25), account_id=None, memo="Payout po_1",
           service_period=None, reference="po_1"),
        jl("jl-0015", "je-payout-001", "payout", "USD", "stripe_balance", "1050",
           "Stripe Balance", 0, 11000, day=dt.date(2026, 10, 25), account_id=None,
           memo="Payout po_1", service_period=None, reference="po_1"),
        jl("jl-0016", "je-payout-001", "payout", "JPY", "bank", "1010", "Bank", 5000, 0,
           day=dt.date(2026, 10, 25), account_id=None, memo="Payout po_1",
           service_period=None, reference="po_1"),
        jl("jl-0017", "je-payout-001", "payout", "JPY", "stripe_balance", "1050",
           "Stripe Balance", 0, 5000, day=dt.date(2026, 10, 25), account_id=None,
           memo="Payout po_1", service_period=None, reference="po_1"),
    ]


def rev(account_id: str, currency: str, product: str | None, day: dt.date, minor: int, *,
        is_catchup: bool = False, service_period: str = "2026-10") -> dict[str, Any]:
    return {"account_id": account_id, "currency": currency, "product": product,
            "revenue_date": day, "accounting_period": PERIOD, "service_period": service_period,
            "revenue_minor": minor, "is_catchup": is_catchup}


def sample_inputs() -> dict[str, Any]:
    # Listed out of order on purpose: outputs must not depend on input order.
    revenue = [
        rev("acct_c", "KWD", "api_calls", OCT31, 1234),
        rev("acct_a", "USD", "api_calls", dt.date(2026, 10, 15), 6000),
        rev("acct_a", "USD", "api_calls", OCT31, 4000),
        rev("acct_a", "USD", "platform", OCT31, 2345),
        rev("acct_a", "USD", "api_calls", dt.date(2026, 10, 20), -500),
        rev("acct_b", "JPY", "api_calls", OCT31, 150000),
        rev("acct_d", "USD", "api_calls", dt.date(2026, 10, 1), 750, is_catchup=True,
            service_period="2026-09"),
        rev("acct_e", "USD", None, dt.date(2026, 10, 12), -25),
    ]
    rollforward = [
        {"currency": "USD", "accounting_period": PERIOD, "balance": "unbilled_receivables",
         "opening_minor": 0, "billed_minor": 0, "recognized_minor": 0, "voided_minor": 0,
         "catchup_minor": 750, "closing_minor": 750},
        {"currency": "USD", "accounting_period": PERIOD, "balance": "deferred_revenue",
         "opening_minor": 50000, "billed_minor": 20000, "recognized_minor": 17000, "voided_minor": 2000,
         "catchup_minor": 0, "closing_minor": 55000},
        {"currency": "KWD", "accounting_period": PERIOD, "balance": "deferred_revenue",
         "opening_minor": 1000, "billed_minor": 0, "recognized_minor": 500, "voided_minor": 0,
         "catchup_minor": 0, "closing_minor": 500},
    ]
    waterfall = [
        {"currency": "USD", "origin_period": "2026-08", "recognition_period": "2026-10",
         "recognized_minor": 15000, "remaining_minor": 25000},
        {"currency": "USD", "origin_period": "2026-08", "recognition_period": "2026-09",
         "recognized_minor": 10000, "remaining_minor": 40000},
        {"currency": "KWD", "origin_period": "2026-09", "recognition_period": "2026-10",
         "recognized_minor": 500, "remaining_minor": 500},
    ]
    invoices = [
        {"invoice_id": "inv-002", "account_id": "acct_b", "period": PERIOD, "currency": "JPY",
         "total_minor": 150000, "line_count": 1, "version": 1, "content_hash": "h2",
         "state": "issued"},
        {"invoice_id": "inv-001", "account_id": "acct_a", "period": PERIOD, "currency": "USD",
         "total_minor": 12345, "line_count": 2, "version": 1, "content_hash": "h1",
         "state": "issued"},
        {"invoice_id": "inv-003", "account_id": "acct_c", "period": PERIOD, "currency": "KWD",
         "total_minor": 1234, "line_count": 1, "version": 2, "content_hash": "h3",
         "state": "issued"},
    ]

    def il(line_id: str, invoice_id: str, account_id: str, key: str, line_type: str,
           category: str | None, currency: str, quantity: Decimal, minor: int) -> dict[str, Any]:
        return {"invoice_line_id": line_id, "invoice_id": invoice_id, "account_id": account_id,
                "period": PERIOD, "service_period": PERIOD, "line_key": key,
                "line_type": line_type, "category": category, "currency": currency,
                "quantity": quantity, "amount_minor": minor}

    invoice_lines = [
        il("inv-001-2", "inv-001", "acct_a", "base_fee", "base_fee", None, "USD",
           Decimal("1"), 2345),
        il("inv-001-1", "inv-001", "acct_a", "usage:api_calls", "usage", "api_calls", "USD",
           Decimal("1000000"), 10000),
        il("inv-002-1", "inv-002", "acct_b", "usage:api_calls", "usage", "api_calls", "JPY",
           Decimal("150000"), 150000),
        il("inv-003-1", "inv-003", "acct_c", "usage:api_calls", "usage", "api_calls", "KWD",
           Decimal("12.5"), 1234),
    ]
    journal = sample_journal()
    journal.reverse()
    return {"journal_lines": journal, "revenue_daily": revenue, "rollforward": rollforward,
            "waterfall": waterfall, "invoices": invoices, "invoice_lines": invoice_lines,
            "currencies": dict(CURRENCIES)}


def build(**overrides: Any) -> dict[str, bytes]:
    inputs = sample_inputs()
    options = overrides.pop("options", None)
    inputs.update(overrides)
    return build_accounting_exports(PERIOD, options=options, **inputs)


def xlsx_cells(data: bytes) -> dict[str, list[list[Any]]]:
    """Every sheet's cell values, as JSON-friendly lists (dates as ISO strings)."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    out: dict[str, list[list[Any]]] = {}
    for sheet in book.worksheets:
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append([v.date().isoformat() if isinstance(v, dt.datetime) else v for v in row])
        out[sheet.title] = rows
    return out


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


EXPECTED_STEMS = [
    "balance_rollforward", "deferred_revenue_waterfall", "invoice_lines", "invoice_register",
    "journal_entries", "netsuite_journal_entries", "qbo_journal_entries", "revenue_by_account",
    "revenue_by_product", "xero_manual_journals_JPY", "xero_manual_journals_KWD",
    "xero_manual_journals_USD",
]


# ----------------------------------------------------------------------------- goldens


def test_file_list() -> None:
    files = build()
    expected = sorted([f"{s}.{ext}" for s in EXPECTED_STEMS for ext in ("csv", "xlsx")]
                      + ["manifest.json"])
    assert list(files) == expected


def test_golden_text_files() -> None:
    files = build()
    text = {n: d for n, d in files.items() if not n.endswith(".xlsx")}
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        for old in GOLDEN.glob("*"):
            if old.name != "xlsx_cells.json":
                old.unlink()
        for name, data in text.items():
            (GOLDEN / name).write_bytes(data)
    held = sorted(p.name for p in GOLDEN.glob("*") if p.name != "xlsx_cells.json")
    assert held == sorted(text), "golden files and built files differ in names"
    for name, data in text.items():
        assert data == (GOLDEN / name).read_bytes(), f"{name} differs from its golden file"


def test_golden_xlsx_cells() -> None:
    files = build()
    cells = {n: xlsx_cells(d) for n, d in files.items() if n.endswith(".xlsx")}
    path = GOLDEN / "xlsx_cells.json"
    rendered = json.dumps(cells, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if REGEN:
        path.write_text(rendered, encoding="utf-8")
    assert json.loads(rendered) == json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- content checks
# Independent of the goldens: facts a reviewer would check by hand.


def test_generic_journal_amounts_and_order() -> None:
    rows = csv_rows(build()["journal_entries.csv"])
    assert [r["journal_line_id"] for r in rows][:2] == ["jl-0010", "jl-0011"]  # Oct 1 first
    by_id = {r["journal_line_id"]: r for r in rows}
    assert by_id["jl-0001"]["debit_amount"] == "123.45"
    assert by_id["jl-0001"]["credit_amount"] == "0.00"
    assert by_id["jl-0004"]["debit_amount"] == "150000"  # JPY
    assert by_id["jl-0006"]["debit_amount"] == "1.234"  # KWD
    assert by_id["jl-0012"]["debit_amount"] == "0.37"
    assert by_id["jl-0010"]["is_catchup"] == "true"
    assert by_id["jl-0001"]["is_catchup"] == "false"
    assert by_id["jl-0008"]["memo"] == 'Credit note cn-001, "goodwill"'
    assert by_id["jl-0012"]["account_id"] == ""
    assert list(rows[0]) == accounting.JOURNAL_COLUMNS


def test_qbo_layout() -> None:
    rows = csv_rows(build()["qbo_journal_entries.csv"])
    assert list(rows[0]) == ["Journal No", "Journal Date", "Account Name", "Description",
                             "Debits", "Credits", "Name", "Currency"]
    first = rows[0]
    assert first["Journal No"] == "je-catchup-001"
    assert first["Journal Date"] == "10/01/2026"
    assert first["Debits"] == "7.50" and first["Credits"] == ""
    assert rows[1]["Debits"] == "" and rows[1]["Credits"] == "7.50"
    fee = [r for r in rows if r["Journal No"] == "je-fee-001"]
    assert fee[0]["Account Name"] == "6100"  # no GL name: the code
    payout = sorted({r["Journal No"] for r in rows if r["Journal No"].startswith("je-payout")})
    assert payout == ["je-payout-001-JPY", "je-payout-001-USD"]
    # Each journal balances in its own currency.
    sums: dict[str, Decimal] = {}
    for r in rows:
        sums[r["Journal No"]] = sums.get(r["Journal No"], Decimal(0)) + Decimal(
            r["Debits"] or 0) - Decimal(r["Credits"] or 0)
        assert r["Currency"]
    assert set(sums.values()) == {Decimal(0)}


def test_xero_layout() -> None:
    files = build()
    rows = csv_rows(files["xero_manual_journals_USD.csv"])
    assert list(rows[0]) == ["*Narration", "*Date", "Description", "*AccountCode", "*TaxRate",
                             "*Amount", "TrackingName1", "TrackingOption1", "TrackingName2",
                             "TrackingOption2"]
    inv = [r for r in rows if r["*Narration"] == "je-inv-001"]
    assert [r["*Amount"] for r in inv] == ["123.45", "-100.00", "-23.45"]
    assert inv[0]["*Date"] == "31/10/2026"
    assert inv[0]["*TaxRate"] == "Tax Exempt"
    assert sum(Decimal(r["*Amount"]) for r in rows) == 0
    kwd = csv_rows(files["xero_manual_journals_KWD.csv"])
    assert [r["*Amount"] for r in kwd] == ["1.234", "-1.234"]
    jpy = csv_rows(files["xero_manual_journals_JPY.csv"])
    assert {r["*Narration"] for r in jpy} == {"je-inv-002", "je-payout-001-JPY"}


def test_xero_split_at_line_limit_keeps_journals_whole() -> None:
    files = build(options=ExportOptions(xero_max_lines=4))
    usd_parts = sorted(n for n in files if n.startswith("xero_manual_journals_USD"))
    assert "xero_manual_journals_USD.csv" not in files
    parts = [csv_rows(files[n]) for n in usd_parts if n.endswith(".csv")]
    narrations = [[r["*Narration"] for r in part] for part in parts]
    for part in parts:
        assert len(part) <= 4
        assert sum(Decimal(r["*Amount"]) for r in part) == 0
    # Every journal sits in exactly one part.
    seen = [n for part in narrations for n in dict.fromkeys(part)]
    assert len(seen) == len(set(seen))
    assert usd_parts[0] == "xero_manual_journals_USD_part01.csv"


def test_xero_over_99_parts_sorts_in_order_and_is_allow_listed() -> None:
    """30M-row bench: 9 000 accounts' journals split into more than 99 parts; `_part100` was
    refused by the allow-list (two digits), and would have sorted before `_part11`."""
    extra = [line for n in range(120) for line in (
        jl(f"jl-x{n:03d}a", f"je-inv-x{n:03d}", "invoice", "USD", *AR, 100 + n, 0,
           memo=f"Invoice x{n:03d}", reference=f"x{n:03d}"),
        jl(f"jl-x{n:03d}b", f"je-inv-x{n:03d}", "invoice", "USD", *USAGE, 0, 100 + n,
           product="api_calls", memo=f"Invoice x{n:03d}: api_calls", reference=f"x{n:03d}"))]
    files = build(journal_lines=sample_journal() + extra, options=ExportOptions(xero_max_lines=3))
    usd = [n.removesuffix(".csv") for n in files
           if n.startswith("xero_manual_journals_USD") and n.endswith(".csv")]
    assert len(usd) > 99 and sorted(usd) == [f"xero_manual_journals_USD_part{i:03d}"
                                             for i in range(1, len(usd) + 1)]
    narrations = [r["*Narration"] for n in sorted(usd) for r in csv_rows(files[n + ".csv"])]
    assert len(narrations) == len(extra) + sum(
        1 for line in sample_journal() if line["currency"] == "USD")
    assert sum(Decimal(r["*Amount"]) for n in usd for r in csv_rows(files[n + ".csv"])) == 0


def test_netsuite_layout_and_subsidiary() -> None:
    rows = csv_rows(build()["netsuite_journal_entries.csv"])
    first = rows[0]
    assert first["External ID"] == "je-catchup-001"
    assert first["Date"] == "10/01/2026"
    assert first["Posting Period"] == "Oct 2026"
    assert first["Subsidiary"] == "Parent Company"
    assert first["Currency"] == "USD"
    assert first["Account"] == "1300"
    assert first["Memo"] == "catchup je-catchup-001"
    opts = ExportOptions(netsuite_subsidiary="HQ", netsuite_subsidiary_by_currency={"JPY": "KK"},
                         netsuite_currency_names={"USD": "US Dollar"})
    rows = csv_rows(build(options=opts)["netsuite_journal_entries.csv"])
    subs = {(r["Currency"], r["Subsidiary"]) for r in rows}
    assert subs == {("US Dollar", "HQ"), ("JPY", "KK"), ("KWD", "HQ")}


def test_revenue_sums() -> None:
    files = build()
    by_product = csv_rows(files["revenue_by_product.csv"])
    usd_api = [r for r in by_product if r["currency"] == "USD" and r["product"] == "api_calls"]
    # 6000 + 4000 - 500 + 750 (catch-up)
    assert usd_api[0]["revenue_minor"] == "10250"
    assert usd_api[0]["revenue_amount"] == "102.50"
    assert usd_api[0]["catchup_revenue_amount"] == "7.50"
    no_product = [r for r in by_product if r["product"] == ""]
    assert no_product[0]["revenue_amount"] == "-0.25"
    by_account = csv_rows(files["revenue_by_account.csv"])
    a = [r for r in by_account if r["account_id"] == "acct_a" and r["product"] == "api_calls"]
    assert a[0]["revenue_amount"] == "95.00"


def test_invoice_files_keep_todays_columns() -> None:
    files = build()
    # The columns exports/close.py writes today (INVOICE_COLUMNS, LINE_COLUMNS), frozen here.
    todays_invoice = ["invoice_id", "account_id", "period", "currency", "total_minor",
                      "line_count", "version", "content_hash"]
    todays_lines = ["invoice_line_id", "invoice_id", "account_id", "period", "service_period",
                    "line_key", "line_type", "category", "currency", "quantity", "amount_minor"]
    register_header = files["invoice_register.csv"].split(b"\n")[0].decode().split(",")
    assert register_header[:len(todays_invoice)] == todays_invoice
    assert files["invoice_lines.csv"].split(b"\n")[0].decode().split(",") == todays_lines
    lines = csv_rows(files["invoice_lines.csv"])
    assert [r["invoice_line_id"] for r in lines] == ["inv-001-1", "inv-001-2", "inv-002-1",
                                                     "inv-003-1"]
    assert lines[0]["quantity"] == "1000000" and lines[3]["quantity"] == "12.5"
    register = csv_rows(files["invoice_register.csv"])
    assert [(r["invoice_id"], r["total_amount"]) for r in register] == [
        ("inv-001", "123.45"), ("inv-002", "150000"), ("inv-003", "1.234")]


def test_manifest() -> None:
    files = build()
    manifest = json.loads(files["manifest.json"])
    assert manifest["period"] == PERIOD
    names = [f["name"] for f in manifest["files"]]
    assert names == sorted(n for n in files if n != "manifest.json")
    for entry in manifest["files"]:
        data = files[entry["name"]]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
        if entry["name"].endswith(".csv"):
            assert entry["rows"] == len(csv_rows(data))
        else:
            book = openpyxl.load_workbook(io.BytesIO(data))
            assert entry["rows"] == book["Data"].max_row - 1
    rows = {f["name"]: f["rows"] for f in manifest["files"]}
    assert rows["journal_entries.csv"] == 17
    assert rows["xero_manual_journals_USD.xlsx"] == 11


def test_xlsx_summary_and_data() -> None:
    files = build()
    book = openpyxl.load_workbook(io.BytesIO(files["journal_entries.xlsx"]))
    assert book.sheetnames == ["Summary", "Data"]
    summary = [list(r) for r in book["Summary"].iter_rows(values_only=True)]
    assert summary[0][:2] == ["period", PERIOD]
    assert summary[1][:2] == ["file", "journal_entries.xlsx"]
    assert summary[4][:2] == ["rows", 17]
    header = summary[6]
    assert header[:1] == ["currency"] and "debits = credits" in header
    by_cur = {r[0]: dict(zip(header, r, strict=False)) for r in summary[7:]}
    assert set(by_cur) == {"JPY", "KWD", "USD"}
    assert by_cur["USD"]["sum of debits"] == pytest.approx(246.32)  # 123.45+5+7.5+0.37+110
    assert by_cur["USD"]["sum of debits (minor units)"] == 24632
    assert by_cur["USD"]["debits = credits"] == "yes"
    assert by_cur["KWD"]["sum of credits (minor units)"] == 1234
    assert by_cur["JPY"]["difference"] == 0
    data = book["Data"]
    head = [c.value for c in data[1]]
    row = {h: c for h, c in zip(head, data[2], strict=True)}
    assert row["entry_date"].value == dt.datetime(2026, 10, 1)
    assert row["debit_amount"].value == pytest.approx(7.5)
    assert row["debit_amount"].number_format == "#,##0.00"
    kwd = [r for r in data.iter_rows(min_row=2) if r[head.index("currency")].value == "KWD"]
    assert kwd[0][head.index("debit_amount")].number_format == "#,##0.000"


def test_xlsx_text_that_looks_like_a_formula_stays_text() -> None:
    journal = sample_journal()
    journal[0] = {**journal[0], "memo": "=HYPERLINK(\"x\")"}
    journal[1] = {**journal[1], "memo": "+1"}
    files = build(journal_lines=journal)
    book = openpyxl.load_workbook(io.BytesIO(files["journal_entries.xlsx"]))
    memos = [r[15] for r in book["Data"].iter_rows(min_row=2, values_only=True)]
    assert "=HYPERLINK(\"x\")" in memos and "+1" in memos
    raw = zipfile.ZipFile(io.BytesIO(files["journal_entries.xlsx"])).read(
        "xl/worksheets/sheet2.xml")
    assert b"<f>" not in raw


# ----------------------------------------------------------------------------- determinism


def test_two_builds_are_byte_identical() -> None:
    assert build() == build()


def test_input_order_does_not_matter() -> None:
    inputs = sample_inputs()
    shuffled = {k: (list(reversed(v)) if isinstance(v, list) else v) for k, v in inputs.items()}
    assert build_accounting_exports(PERIOD, **inputs) == build_accounting_exports(PERIOD, **shuffled)


def test_xlsx_zip_is_normalized() -> None:
    files = build()
    for name, data in files.items():
        if not name.endswith(".xlsx"):
            continue
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            assert infos[0].filename == "[Content_Types].xml"
            for info in infos:
                assert info.date_time == (1980, 1, 1, 0, 0, 0)
                assert info.compress_type == zipfile.ZIP_STORED
            core = z.read("docProps/core.xml").decode()
        # Document dates come from the period (it ended 2026-11-01), not the clock.
        assert "<dcterms:created xsi:type=\"dcterms:W3CDTF\">2026-11-01T00:00:00Z" in core
        assert "<dcterms:modified xsi:type=\"dcterms:W3CDTF\">2026-11-01T00:00:00Z" in core


def test_deterministic_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """Same bytes from a separate process (another hash seed, another clock reading)."""
    import subprocess
    import sys

    script = "\n".join([
        "import hashlib, json, sys",
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})",
        "import test_accounting as t",
        "files = t.build()",
        "print(json.dumps({n: hashlib.sha256(d).hexdigest() for n, d in files.items()}))",
    ])
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Kiritimati", "LC_ALL": "C"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    here = {n: hashlib.sha256(d).hexdigest() for n, d in build().items()}
    assert json.loads(out.stdout) == here


# ----------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(("minor", "exponent", "text"), [
    (1234, 2, "12.34"), (1234, 0, "1234"), (1234, 3, "1.234"),
    (0, 2, "0.00"), (0, 0, "0"), (0, 3, "0.000"),
    (-1234, 2, "-12.34"), (-5, 2, "-0.05"), (-5, 3, "-0.005"), (-1, 0, "-1"),
    (5, 2, "0.05"), (100, 2, "1.00"), (1000, 3, "1.000"), (-100000, 2, "-1000.00"),
    (10**30 + 7, 2, "10000000000000000000000000000.07"),
    (-(10**30 + 7), 3, "-1000000000000000000000000000.007"),
    (2**63, 0, "9223372036854775808"),
])
def test_format_minor(minor: int, exponent: int, text: str) -> None:
    assert format_minor(minor, exponent) == text
    with localcontext(prec=100):  # exact for these sizes; the default 28 digits would round
        assert Decimal(text) == Decimal(minor).scaleb(-exponent)


@pytest.mark.parametrize("bad", [1.5, 12.0, "12", True, None])
def test_format_minor_refuses_non_integers(bad: Any) -> None:
    with pytest.raises(TypeError):
        format_minor(bad, 2)


def test_large_amounts_stay_exact_in_xlsx() -> None:
    big = 10**16 + 1  # more digits than Excel keeps: written as exact text
    journal = [
        jl("jl-1", "je-big", "invoice", "USD", *AR, big, 0),
        jl("jl-2", "je-big", "invoice", "USD", *USAGE, 0, big),
        jl("jl-3", "je-mid", "invoice", "USD", *AR, 10**14 + 1, 0),
        jl("jl-4", "je-mid", "invoice", "USD", *USAGE, 0, 10**14 + 1),
    ]
    files = build(journal_lines=journal)
    rows = {r["journal_line_id"]: r for r in csv_rows(files["journal_entries.csv"])}
    assert rows["jl-1"]["debit_amount"] == "100000000000000.01"
    book = openpyxl.load_workbook(io.BytesIO(files["journal_entries.xlsx"]))
    data = {r[0]: r for r in book["Data"].iter_rows(min_row=2, values_only=True)}
    debit_amount = accounting.JOURNAL_COLUMNS.index("debit_amount")
    debit_minor = accounting.JOURNAL_COLUMNS.index("debit_minor")
    assert data["jl-1"][debit_amount] == "100000000000000.01"
    assert data["jl-1"][debit_minor] == "10000000000000001"
    assert data["jl-3"][debit_amount] == pytest.approx(1000000000000.01)
    assert data["jl-3"][debit_minor] == 10**14 + 1


def test_integral_decimals_are_accepted_as_minor_units() -> None:
    journal = sample_journal()
    journal[0] = {**journal[0], "debit_minor": Decimal("12345")}
    assert build(journal_lines=journal) == build()


# ----------------------------------------------------------------------------- validation


def refused(match: str, **overrides: Any) -> ExportError:
    with pytest.raises(ExportError, match=match) as info:
        build(**overrides)
    return info.value


def test_export_error_is_a_stage_error() -> None:
    assert issubclass(ExportError, StageError) and issubclass(ExportError, MeterlineError)
    assert ExportError.exit_code == 3


def test_unmapped_gl_account_names_entry_and_key() -> None:
    journal = sample_journal()
    journal[1] = {**journal[1], "gl_account": None, "gl_key": "revenue:error"}
    err = refused("unmapped GL account", journal_lines=journal)
    assert "je-inv-001" in str(err) and "'revenue:error'" in str(err)


def test_unbalanced_entry_names_entry_and_difference() -> None:
    journal = sample_journal()
    journal[1] = {**journal[1], "credit_minor": 9999}
    err = refused("unbalanced journal entry", journal_lines=journal)
    assert "je-inv-001 in USD" in str(err)
    assert "difference 0.01 USD, 1 minor units" in str(err)


def test_unbalanced_entry_per_currency() -> None:
    # Balanced in total minor units across currencies, not per currency.
    journal = sample_journal()
    journal[15] = {**journal[15], "debit_minor": 5001}
    journal[13] = {**journal[13], "debit_minor": 10999}
    err = refused("unbalanced journal entry", journal_lines=journal)
    assert "je-payout-001 in JPY" in str(err) and "je-payout-001 in USD" in str(err)


def test_unbalanced_period() -> None:
    lines = [
        jl("a", "e1", "invoice", "USD", *AR, 100, 0, accounting_period="2026-10"),
        jl("b", "e1", "invoice", "USD", *USAGE, 0, 90, accounting_period="2026-10"),
        jl("c", "e2", "invoice", "USD", *USAGE, 0, 10, accounting_period="2026-10"),
    ]
    with pytest.raises(ExportError, match=r"unbalanced accounting period: accounting period "
                                          r"2026-10 in USD: debits 1.00 != credits 0.90 "
                                          r"\(difference 0.10 USD\)"):
        accounting._check_period_balance(PERIOD, lines[:2], CURRENCIES)
    accounting._check_period_balance(PERIOD, lines, CURRENCIES)


def test_unknown_currency_names_entry_and_currency() -> None:
    journal = sample_journal()
    journal[0] = {**journal[0], "currency": "XBT"}
    journal[1] = {**journal[1], "currency": "XBT"}
    journal[2] = {**journal[2], "currency": "XBT"}
    err = refused("no known minor-unit exponent", journal_lines=journal)
    assert "je-inv-001" in str(err) and "'XBT'" in str(err)


def test_unknown_currency_names_invoice() -> None:
    inputs = sample_inputs()
    invoices = [dict(i) for i in inputs["invoices"]]
    invoices[0]["currency"] = "ZZZ"
    err = refused("no known minor-unit exponent", invoices=invoices)
    assert "invoice inv-002" in str(err) and "'ZZZ'" in str(err)
    lines = [dict(i) for i in inputs["invoice_lines"]]
    lines[0]["currency"] = "ZZZ"
    err = refused("no known minor-unit exponent", invoice_lines=lines)
    assert "invoice line inv-001-2" in str(err)


def test_unknown_currency_in_revenue_waterfall_rollforward() -> None:
    inputs = sample_inputs()
    for key in ("revenue_daily", "waterfall", "rollforward"):
        rows = [dict(r) for r in inputs[key]]
        rows[0]["currency"] = "QQQ"
        err = refused("no known minor-unit exponent", **{key: rows})
        assert "'QQQ'" in str(err)


def test_float_amounts_are_refused() -> None:
    journal = sample_journal()
    journal[0] = {**journal[0], "debit_minor": 12345.0}
    err = refused("not integer minor units", journal_lines=journal)
    assert "jl-0001" in str(err)
    inputs = sample_inputs()
    revenue = [dict(r) for r in inputs["revenue_daily"]]
    revenue[0]["revenue_minor"] = Decimal("12.5")
    refused("not integer minor units", revenue_daily=revenue)


def test_negative_debit_is_refused() -> None:
    journal = sample_journal()
    journal[0] = {**journal[0], "debit_minor": -12345}
    refused("is negative", journal_lines=journal)


def test_line_with_debit_and_credit_is_refused() -> None:
    journal = sample_journal()
    journal[0] = {**journal[0], "credit_minor": 1}
    journal[1] = {**journal[1], "credit_minor": 10001}
    refused("both a debit and a credit", journal_lines=journal)


def test_entry_on_two_dates_is_refused() -> None:
    journal = sample_journal()
    journal[0] = {**journal[0], "entry_date": dt.date(2026, 10, 30)}
    refused("je-inv-001 has lines with several entry_dates", journal_lines=journal)


def test_duplicate_line_id_is_refused() -> None:
    journal = sample_journal()
    journal.append(dict(journal[0]))
    journal.append({**journal[1], "journal_line_id": "jl-x", "credit_minor": 12345})
    refused("jl-0001 appears more than once", journal_lines=journal)


def test_missing_key_is_refused() -> None:
    journal = sample_journal()
    del journal[3]["gl_account_name"]
    refused("journal line jl-0004 of entry je-inv-002 lacks gl_account_name",
            journal_lines=journal)


def test_bad_period_and_currency_table() -> None:
    with pytest.raises(ExportError, match="YYYY-MM"):
        build_accounting_exports("2026-13", **sample_inputs())
    inputs = sample_inputs()
    inputs["currencies"] = {**CURRENCIES, "USD": 2.0}
    with pytest.raises(ExportError, match="currency USD has exponent 2.0"):
        build_accounting_exports(PERIOD, **inputs)


def test_many_problems_are_listed_with_a_count() -> None:
    journal = [jl(f"l{i:02d}", f"e{i:02d}", "invoice", "USD", "k", None, None, 1, 1 - 1)
               for i in range(12)]
    err = refused("unmapped GL account", journal_lines=journal)
    assert "e00" in str(err) and "(and 2 more)" in str(err)


def test_nothing_is_built_when_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(accounting, "_csv_bytes", lambda t: calls.append(t.stem) or b"")
    journal = sample_journal()
    journal[1] = {**journal[1], "gl_account": None}
    with pytest.raises(ExportError):
        build(journal_lines=journal)
    assert calls == []


def test_summary_check_reports_an_imbalance() -> None:
    """The Summary sheet's check is recomputed from the file's rows, so it can say NO."""
    usd = CURRENCIES["USD"]
    table = accounting.Table(
        "t", ["Debits", "Credits"],
        [[accounting.Money(100, "USD", usd), None], [None, accounting.Money(90, "USD", usd)]],
        balance=("split", "Debits", "Credits"))
    header, body = accounting._summary(table, CURRENCIES)
    row = dict(zip(header, body[0], strict=True))
    assert row["debits = credits"] == "NO"
    assert row["difference"].text() == "0.10"
    signed = accounting.Table("x", ["*Amount"], [[accounting.Money(5, "USD", usd)],
                                                 [accounting.Money(-3, "USD", usd)]],
                              balance=("signed", "*Amount"))
    header, body = accounting._summary(signed, CURRENCIES)
    row = dict(zip(header, body[0], strict=True))
    assert (row["sum of debits (minor units)"], row["sum of credits (minor units)"]) == (5, 3)
    assert row["debits = credits"] == "NO"


def test_xlsx_longer_than_a_sheet_continues_on_more_data_sheets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounting, "EXCEL_MAX_ROWS", 7)  # 6 data rows per sheet
    files = build()
    book = openpyxl.load_workbook(io.BytesIO(files["journal_entries.xlsx"]))
    assert book.sheetnames == ["Summary", "Data", "Data 2", "Data 3"]
    ids = [r[0] for name in book.sheetnames[1:]
           for r in book[name].iter_rows(min_row=2, values_only=True)]
    assert ids == [r["journal_line_id"] for r in csv_rows(files["journal_entries.csv"])]
    assert [book[n].max_row for n in book.sheetnames[1:]] == [7, 7, 6]
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(max_row=5, values_only=True)}
    assert summary["data sheet"] == "Data, Data 2, Data 3"
    assert summary["rows"] == 17
