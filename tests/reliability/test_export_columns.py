"""Exports carry only allow-listed columns: no names, emails, addresses or phones unless configured.

What the tests prove (exports/columns.py holds the allow-lists; docs/exports.md "Personal data"):

  * every column of every accountant export file and every finance report table is in its
    file's allow-list, and the builders refuse to write a file with any other column;
  * the allow-lists classify every column that looks personal (name, email, address, phone)
    either as personal data or as reviewed and harmless;
  * personal data planted in the sources (billing account names, Stripe customer emails,
    addresses and phones: as extra columns of the export rows, in the finance marts, inside a
    quarantined source row quoted by a finding) appears in no file of an export or a report
    (CSV, XLSX, HTML, figures.json, manifest) unless `[exports] include_personal_data` names its
    kind, and then only that kind.

Cheap: the accountant exports are built from hand-made rows, the reports from a small DuckDB
holding hand-made finance marts (no pipeline run, no Chromium). One slow test checks the real
files of the shared demo world as well.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest

from exports import accounting
from exports.accounting import build_accounting_exports
from exports.columns import (
    ACCOUNTING_FILES,
    DATA_CATEGORY,
    PERSONAL_COLUMNS,
    REPORT_FILES,
    WITHHELD,
    allowed_columns,
    check_columns,
    data_categories,
    redact_detail,
)
from exports.reports import build_report
from meterline.config import PERSONAL_DATA, Config, load_config
from meterline.errors import ConfigError, ExportError
from meterline.warehouse import connect

PERIOD = "2026-10"
DAY = dt.date(2026, 10, 31)
AS_OF = dt.datetime(2026, 11, 1, 6, 0)

# planted personal data: none of it may reach a file unless configured
NAME = "Jane Planted-Doe"
EMAIL = "jane.planted@example.org"
ADDRESS = "42 Planted Street, Springfield"
PHONE = "+1 555 0100 7788"
PLANTED = {"name": NAME, "email": EMAIL, "address": ADDRESS, "phone": PHONE}

# columns whose name looks personal but that were reviewed: not about a person. GL account names
# (a chart of accounts), QuickBooks' / NetSuite's "Name" (our account_id), Xero's tracking
# category names (left empty), reconciliation check names.
NOT_PERSONAL = {"gl_account_name", "Account Name", "Name", "TrackingName1", "TrackingName2", "check_name"}
LOOKS_PERSONAL = re.compile(r"name|mail|address|phone|street|postal|zip", re.IGNORECASE)


# ----------------------------------------------------------------------------- file readers


def file_columns(name: str, data: bytes) -> list[str]:
    """The header of a CSV, or of an XLSX's data sheet(s) (every sheet but Summary)."""
    if name.endswith(".csv"):
        return next(csv.reader(io.StringIO(data.decode("utf-8"))))
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    headers = [[c for c in next(sheet.iter_rows(values_only=True))]
               for sheet in book.worksheets if sheet.title != "Summary"]
    assert headers and all(h == headers[0] for h in headers), name
    return [str(c) for c in headers[0]]


def file_text(name: str, data: bytes) -> str:
    """Everything a file holds as text (an XLSX: every part of its package)."""
    if name.endswith(".xlsx"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return data.decode("utf-8", "replace")


def stem(name: str) -> str:
    """A file's stem, without its folder: `exports/2026-10/invoice_lines.csv` -> `invoice_lines`."""
    return name.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def assert_columns_allowed(files: dict[str, bytes], personal: frozenset[str] = frozenset()) -> int:
    checked = 0
    for name, data in sorted(files.items()):
        if not name.endswith((".csv", ".xlsx")):
            continue
        columns = file_columns(name, data)
        check_columns(stem(name), columns, personal)  # raises on anything not allowed
        allowed = set(allowed_columns(stem(name)))
        for column in columns:
            assert column in allowed or (DATA_CATEGORY in allowed and column in data_categories()), (name, column)
            kind = PERSONAL_COLUMNS.get(column)
            assert kind is None or kind in personal, (name, column)
        checked += 1
    return checked


def leaked(files: dict[str, bytes], kinds: set[str]) -> dict[str, list[str]]:
    """The planted values of `kinds` found in each file."""
    out: dict[str, list[str]] = {}
    for name, data in files.items():
        text = file_text(name, data)
        found = [k for k in sorted(kinds) if PLANTED[k] in text or json.dumps(PLANTED[k])[1:-1] in text]
        if found:
            out[name] = found
    return out


# ----------------------------------------------------------------------------- the allow-lists


def test_every_personal_looking_column_is_classified() -> None:
    lists = {**ACCOUNTING_FILES, **REPORT_FILES}
    for file, columns in lists.items():
        for column in columns:
            if LOOKS_PERSONAL.search(column):
                assert column in PERSONAL_COLUMNS or column in NOT_PERSONAL, (file, column)
    assert set(PERSONAL_COLUMNS.values()) <= set(PERSONAL_DATA)


def test_check_columns_refuses_unlisted_and_unconfigured_personal_columns() -> None:
    check_columns("invoice_register", ["invoice_id", "total_amount"])
    check_columns("xero_manual_journals_USD_part02", ["*Narration", "*Amount"])
    check_columns("flash_usage_days", ["day", sorted(data_categories())[0]])
    with pytest.raises(ExportError, match=r"invoice_register: column\(s\) 'email' not in the export allow-list"):
        check_columns("invoice_register", ["invoice_id", "email"])
    with pytest.raises(ExportError, match="not in the export allow-list"):
        check_columns("flash_usage_days", ["day", "not_a_category"])
    with pytest.raises(ExportError, match="not an allow-listed export file"):
        check_columns("customers", ["account_id"])
    with pytest.raises(ExportError, match=r"personal data column\(s\) account_name not enabled"):
        check_columns("pack_top_accounts", ["account_id", "account_name"])
    check_columns("pack_top_accounts", ["account_id", "account_name"], {"name"})


def test_the_setting_takes_known_kinds_only(tmp_path: Path) -> None:
    conf = tmp_path / "meterline.toml"
    conf.write_text('[exports]\ninclude_personal_data = ["email", "name", "email"]\n')
    assert load_config(conf, env={}).personal_data == {"email", "name"}
    conf.write_text("")
    assert load_config(conf, env={}).personal_data == frozenset()
    env = {"METERLINE_EXPORTS_INCLUDE_PERSONAL_DATA": "phone, address"}
    assert load_config(conf, env=env).personal_data == {"phone", "address"}
    conf.write_text('[exports]\ninclude_personal_data = ["ssn"]\n')
    with pytest.raises(ConfigError, match=r"\[exports\] include_personal_data: unknown kind 'ssn'"):
        load_config(conf, env={})
    conf.write_text("[exports]\ninclude_personal_data = [1]\n")
    with pytest.raises(ConfigError, match=r"\[exports\] include_personal_data must be a list"):
        load_config(conf, env={})


def test_redact_detail() -> None:
    row = {"account_id": "a1", "name": NAME, "currency": "XXX"}
    detail = f"batch=b1 table=billing_accounts row={json.dumps(row, separators=(',', ':'))}"
    assert NAME not in redact_detail(detail)
    assert json.loads(redact_detail(detail).split("row=", 1)[1]) == {**row, "name": WITHHELD}
    assert redact_detail(detail, {"name"}) == detail
    # a plan's name is not personal; nothing withheld -> the detail as it was
    plan = 'batch=b1 table=billing_plans row={"plan_id":"p","name":"Pro","currency":"XXX"}'
    assert redact_detail(plan) == plan
    # raw Stripe objects are always withheld; emails by kind
    cus = {"id": "cus_1", "account_id": "a1", "email": EMAIL,
           "object_json": json.dumps({"address": {"line1": ADDRESS}, "phone": PHONE})}
    detail = f"batch=b2 table=stripe_customers row={json.dumps(cus)}"
    for personal in (set(), set(PERSONAL_DATA)):
        shown = redact_detail(detail, personal)
        assert ADDRESS not in shown and PHONE not in shown
        assert (EMAIL in shown) == ("email" in personal)
    # what does not parse is withheld whole
    assert redact_detail(f"batch=b3 table=billing_accounts row={{broken {EMAIL}") == \
        f"batch=b3 table=billing_accounts row={WITHHELD}"
    assert redact_detail(f"batch=b3 table=t row={{}} and {EMAIL}") == f"batch=b3 table=t row={WITHHELD}"
    # details without a source row are counts and ids: unchanged
    assert redact_detail("metering=5 billing=4 diff=1") == "metering=5 billing=4 diff=1"
    assert redact_detail(None) is None


# ----------------------------------------------------------------------------- accountant exports


def accounting_rows() -> dict[str, Any]:
    """One closed period's rows, each with personal data in columns the exports must ignore."""
    extra = {"account_name": NAME, "email": EMAIL, "address": ADDRESS, "phone": PHONE,
             "customer_email": EMAIL, "object_json": json.dumps({"email": EMAIL})}

    def jl(line_id: str, entry_id: str, gl: tuple[str, str, str], debit: int, credit: int,
           currency: str = "USD", entry_type: str = "invoice") -> dict[str, Any]:
        return {"journal_line_id": line_id, "entry_id": entry_id, "entry_date": DAY,
                "accounting_period": PERIOD, "entry_type": entry_type, "account_id": "acct_1",
                "currency": currency, "gl_key": gl[0], "gl_account": gl[1], "gl_account_name": gl[2],
                "product": "error", "debit_minor": debit, "credit_minor": credit,
                "memo": f"Invoice inv-1 {currency}", "is_catchup": False, "service_period": PERIOD,
                "reference": "inv-1", **extra}

    ar, rev = ("receivables", "1200", "Accounts Receivable"), ("revenue:usage", "4100", "Usage Revenue")
    journal = [jl("jl1", "je1", ar, 1234, 0), jl("jl2", "je1", rev, 0, 1234),
               jl("jl3", "je2", ar, 500, 0, "JPY"), jl("jl4", "je2", rev, 0, 500, "JPY")]
    return {
        "journal_lines": journal,
        "revenue_daily": [{"account_id": "acct_1", "currency": "USD", "product": "error", "revenue_date": DAY,
                           "accounting_period": PERIOD, "service_period": PERIOD, "revenue_minor": 1234,
                           "is_catchup": False, **extra}],
        "rollforward": [{"currency": "USD", "accounting_period": PERIOD, "balance": "deferred_revenue",
                         "opening_minor": 0, "billed_minor": 10, "recognized_minor": 5, "voided_minor": 0,
                         "catchup_minor": 0, "closing_minor": 5, **extra}],
        "waterfall": [{"currency": "USD", "origin_period": PERIOD, "recognition_period": PERIOD,
                       "recognized_minor": 5, "remaining_minor": 5, **extra}],
        "invoices": [{"invoice_id": "inv-1", "account_id": "acct_1", "period": PERIOD, "currency": "USD",
                      "total_minor": 1234, "line_count": 1, "version": 1, "content_hash": "h",
                      "state": "issued", **extra}],
        "invoice_lines": [{"invoice_line_id": "inv-1-1", "invoice_id": "inv-1", "account_id": "acct_1",
                           "period": PERIOD, "service_period": PERIOD, "line_key": "usage:error",
                           "line_type": "usage", "category": "error", "currency": "USD",
                           "quantity": Decimal(7), "amount_minor": 1234, **extra}],
        "currencies": {"USD": 2, "JPY": 0},
    }


def test_accountant_exports_carry_only_allow_listed_columns_and_no_personal_data() -> None:
    files = build_accounting_exports(PERIOD, **accounting_rows())
    assert assert_columns_allowed(files) == len(files) - 1  # every file but manifest.json
    assert {file_columns(n, d)[0] for n, d in files.items() if n.endswith(".csv")}  # not empty
    assert leaked(files, set(PLANTED)) == {}


def test_an_accountant_export_with_another_column_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounting, "JOURNAL_COLUMNS", [*accounting.JOURNAL_COLUMNS, "email"])
    with pytest.raises(ExportError, match=r"journal_entries: column\(s\) 'email' not in the export allow-list"):
        build_accounting_exports(PERIOD, **accounting_rows())


# ----------------------------------------------------------------------------- finance reports

MART_TABLES = {
    ("seeds", "currencies"): "currency VARCHAR, minor_unit_exponent INTEGER",
    ("marts", "fin_calendar"): "report_day DATE, period VARCHAR, day_of_month INTEGER, days_in_period INTEGER, "
                               "compare_period VARCHAR, compare_day_of_month INTEGER, is_period_locked BOOLEAN, "
                               "is_period_complete BOOLEAN, as_of TIMESTAMP",
    ("marts", "fin_daily_flash"): "report_day DATE, currency VARCHAR, " + ", ".join(
        f"{m}_{s} BIGINT" for m in ("billed", "collected", "refunded", "revenue")
        for s in ("day_minor", "mtd_minor", "prev_mtd_minor", "change_bps")),
    ("marts", "fin_usage_daily"): "category VARCHAR, unit VARCHAR, report_day DATE, quantity BIGINT, "
                                  "last_7d_quantity BIGINT, prior_7d_quantity BIGINT, trend_bps BIGINT, "
                                  "mtd_quantity BIGINT, account_count BIGINT, has_full_trend BOOLEAN",
    ("marts", "fin_reconciliation_status"): "scope VARCHAR, scope_period VARCHAR, check_name VARCHAR, "
                                            "status VARCHAR, is_finding BOOLEAN, findings BIGINT, "
                                            "compared_rows BIGINT, as_of TIMESTAMP",
    ("marts", "fin_reconciliation_findings"): "check_name VARCHAR, status VARCHAR, account_id VARCHAR, "
                                              "category VARCHAR, period VARCHAR, day VARCHAR, object_id VARCHAR, "
                                              "reason VARCHAR, detail VARCHAR, difference DECIMAL(38, 12), "
                                              "unit VARCHAR, scope_period VARCHAR, as_of TIMESTAMP",
    ("marts", "fin_payment_events"): "event_type VARCHAR, object_id VARCHAR, account_id VARCHAR, period VARCHAR, "
                                     "currency VARCHAR, amount_minor BIGINT, event_status VARCHAR, "
                                     "created_at TIMESTAMP, is_open BOOLEAN, is_at_risk BOOLEAN, event_period VARCHAR",
    ("marts", "fin_payment_events_summary"): "scope VARCHAR, scope_period VARCHAR, currency VARCHAR, "
                                             "event_type VARCHAR, event_count BIGINT, amount_minor BIGINT, "
                                             "open_count BIGINT",
    ("marts", "fin_revenue_by_product"): "currency VARCHAR, period VARCHAR, product VARCHAR, product_rank INTEGER, "
                                         "revenue_minor BIGINT, share_bps BIGINT, catchup_minor BIGINT, "
                                         "period_total_minor BIGINT",
    ("marts", "fin_revenue_by_account"): "currency VARCHAR, period VARCHAR, account_id VARCHAR, "
                                         "account_name VARCHAR, revenue_minor BIGINT, billed_minor BIGINT, "
                                         "period_total_minor BIGINT, share_bps BIGINT, account_rank INTEGER",
    ("marts", "fin_mrr_bridge"): "currency VARCHAR, period VARCHAR, opening_mrr_minor BIGINT, " + ", ".join(
        f"{m}_minor BIGINT" for m in ("carried_in", "new", "expansion", "reactivation", "contraction", "churn"))
        + ", closing_mrr_minor BIGINT, closing_arr_minor BIGINT, paying_accounts BIGINT",
    ("marts", "fin_mrr_movements"): "currency VARCHAR, period VARCHAR, account_id VARCHAR, movement VARCHAR, "
                                    "opening_mrr_minor BIGINT, movement_minor BIGINT, mrr_minor BIGINT, "
                                    "arr_minor BIGINT",
    ("marts", "fct_balance_rollforward"): "currency VARCHAR, accounting_period VARCHAR, balance VARCHAR, "
                                          "opening_minor BIGINT, billed_minor BIGINT, recognized_minor BIGINT, "
                                          "voided_minor BIGINT, catchup_minor BIGINT, closing_minor BIGINT",
    ("marts", "fct_deferred_revenue_waterfall"): "currency VARCHAR, origin_period VARCHAR, "
                                                 "recognition_period VARCHAR, sold_minor BIGINT, "
                                                 "recognized_minor BIGINT, remaining_minor BIGINT",
    ("marts", "fin_receivables_aging_buckets"): "snapshot_day DATE, currency VARCHAR, aging_bucket VARCHAR, "
                                                "bucket_order INTEGER, open_minor BIGINT, invoice_count BIGINT",
    ("marts", "fin_receivables_aging"): "snapshot_day DATE, currency VARCHAR, age_days INTEGER, invoice_id VARCHAR, "
                                        "account_id VARCHAR, period VARCHAR, invoice_date DATE, total_minor BIGINT, "
                                        "collected_minor BIGINT, credited_minor BIGINT, open_minor BIGINT, "
                                        "aging_bucket VARCHAR",
}


def quarantine_detail(table: str, row: dict[str, Any]) -> str:
    return f"batch=b1 table={table} row={json.dumps(row, separators=(',', ':'))}"


FINDINGS = [
    # a billing account that failed its contract: the whole row, with the account's name
    ("billing_accounts", {"account_id": "acct_9", "name": NAME, "currency": "XXX", "billing_anchor_day": 1,
                          "stripe_customer_id": "cus_9", "created_at": "2026-01-01 00:00:00"}),
    # a source row with contact columns, and a raw Stripe customer object
    ("stripe_customers", {"id": "cus_9", "account_id": "acct_9", "email": EMAIL, "phone": PHONE,
                          "object_json": json.dumps({"email": EMAIL, "address": {"line1": ADDRESS},
                                                     "phone": PHONE, "name": NAME})}),
]


@pytest.fixture(scope="module")
def marts_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding hand-made finance marts for 2026-10 (the day 2026-10-31), with the
    planted personal data in an account name and in quarantined source rows."""
    path = tmp_path_factory.mktemp("marts") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    for (schema, table), cols in MART_TABLES.items():
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE TABLE {schema}.{table} ({cols})")
    con.execute("INSERT INTO seeds.currencies VALUES ('USD', 2)")
    con.execute("INSERT INTO marts.fin_calendar VALUES (?, ?, 31, 31, NULL, NULL, true, true, ?)",
                [DAY, PERIOD, AS_OF])
    con.execute("INSERT INTO marts.fin_daily_flash VALUES (?, 'USD', " + ", ".join(["100"] * 16) + ")", [DAY])
    con.execute("INSERT INTO marts.fin_usage_daily VALUES ('error', 'event', ?, 5, 30, 20, 5000, 90, 1, true)",
                [DAY])
    con.execute("INSERT INTO marts.fin_revenue_by_product VALUES ('USD', ?, 'error', 1, 1234, 10000, 0, 1234)",
                [PERIOD])
    con.execute("INSERT INTO marts.fin_revenue_by_account VALUES ('USD', ?, 'acct_9', ?, 1234, 1234, 1234, "
                "10000, 1)", [PERIOD, NAME])
    for scope, scope_period in (("all", None), ("month", PERIOD)):
        con.execute("INSERT INTO marts.fin_reconciliation_status VALUES (?, ?, 'quarantine', 'quarantined', "
                    "true, 2, 2, ?)", [scope, scope_period, AS_OF])
    for table, row in FINDINGS:
        con.execute("INSERT INTO marts.fin_reconciliation_findings VALUES ('quarantine', 'quarantined', "
                    "'acct_9', NULL, NULL, ?, NULL, 'invalid_currency', ?, NULL, NULL, ?, ?)",
                    [DAY.isoformat(), quarantine_detail(table, row), PERIOD, AS_OF])
    con.close()
    return path


def report_config(tmp: Path, warehouse: Path, personal: list[str]) -> Config:
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "meterline.toml"
    conf.write_text(f'[warehouse]\nurl = "duckdb:///{warehouse}"\n'
                    f"[exports]\ninclude_personal_data = {json.dumps(personal)}\n", encoding="utf-8")
    return load_config(conf, env={})


def report_files(cfg: Config, out: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with connect(cfg.warehouse, read_only=True) as conn:
        for kind, when in (("daily", DAY.isoformat()), ("month", PERIOD)):
            result = build_report(conn, cfg, kind, when, out / kind, with_pdf=False)
            files |= {f"{kind}/{p.name}": p.read_bytes() for p in result.files}
    return files


def report_tables(files: dict[str, bytes]) -> dict[str, bytes]:
    return {n.split("/", 1)[1]: d for n, d in files.items() if n.endswith((".csv", ".xlsx"))}


def csv_dicts(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


@pytest.mark.parametrize("personal", [[], ["name"], ["email", "phone"], list(PERSONAL_DATA)])
def test_reports_carry_allow_listed_columns_and_only_configured_personal_data(
        marts_warehouse: Path, tmp_path: Path, personal: list[str]) -> None:
    cfg = report_config(tmp_path, marts_warehouse, personal)
    files = report_files(cfg, tmp_path / "out")
    tables = report_tables(files)
    # every table of both reports was written and checked (19 tables, CSV and XLSX)
    assert {stem(n) for n in tables} == set(REPORT_FILES)
    assert assert_columns_allowed(tables, frozenset(personal)) == 2 * len(REPORT_FILES)
    found = leaked(files, set(PLANTED))
    # nothing of a kind not configured, anywhere (HTML page, CSV, XLSX, figures.json)
    assert {k for kinds in found.values() for k in kinds} <= set(personal), found
    # a raw Stripe object is never shown: its address is in no file whatever is configured
    assert not any("address" in kinds for kinds in found.values()), found
    top = csv_dicts(tables["pack_top_accounts.csv"])
    if "name" in personal:
        assert [r["account_name"] for r in top] == [NAME]
        assert "name" in found["month/month-end-pack-2026-10.html"]
    else:
        assert list(top[0]) == ["currency", "rank", "account_id", "revenue", "share_pct", "billed"]
    for stem_ in ("flash_drift_findings", "pack_reconciliation_findings"):
        details = {re.search(r"table=(\S+)", r["detail"]).group(1): r["detail"]
                   for r in csv_dicts(tables[f"{stem_}.csv"])}
        assert set(details) == {table for table, _ in FINDINGS}
        account, customer = details["billing_accounts"], details["stripe_customers"]
        assert (NAME in account) == ("name" in personal) == (WITHHELD not in account)
        assert WITHHELD in customer  # its object_json, always
        assert (EMAIL in customer) == ("email" in personal)
        assert (PHONE in customer) == ("phone" in personal)
        assert NAME not in customer and ADDRESS not in customer


# ----------------------------------------------------------------------------- the demo world


def world_files(world: Path, tmp: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted((world / "exports").rglob("*")):
        if path.is_file():
            yield str(path.relative_to(world)), path.read_bytes()
    warehouse = (world / ".meterline" / "warehouse.duckdb").resolve()
    cfg = report_config(tmp, warehouse, [])
    yield from report_files(cfg, tmp / "out").items()


@pytest.mark.slow
def test_the_demo_worlds_exports_and_reports_carry_no_personal_data(demo_world: Path, tmp_path: Path) -> None:
    """The real files: the closed period's exports as the demo wrote them and both finance
    reports built from its warehouse. Its billing accounts have names and its Stripe customers
    emails; none of them is in any file."""
    with connect(load_config(env={"METERLINE_WAREHOUSE": f"duckdb:///{demo_world}/.meterline/warehouse.duckdb"},
                             explicit=_empty(tmp_path)).warehouse, read_only=True) as conn:
        names = {r[0] for r in conn.fetchall('SELECT DISTINCT name FROM "raw"."billing_accounts"') if r[0]}
        emails = {r[0] for r in conn.fetchall('SELECT DISTINCT email FROM "raw"."stripe_customers"') if r[0]}
    assert names and emails
    files = dict(world_files(demo_world, tmp_path))
    assert f"exports/{PERIOD}/journal_entries.csv" in files
    assert assert_columns_allowed(files) >= 2 * (len(ACCOUNTING_FILES) + len(REPORT_FILES))
    for name, data in files.items():
        text = file_text(name, data)
        assert not [v for v in names | emails if v in text], name


def _empty(tmp: Path) -> Path:
    conf = tmp / "empty.toml"
    conf.write_text("", encoding="utf-8")
    return conf
