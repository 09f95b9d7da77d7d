"""What export and report files may carry: an explicit allow-list of columns per file, and the
personal data kept out of them unless `[exports] include_personal_data` names its kind.

Every CSV / XLSX an export or a report writes is checked against `ACCOUNTING_FILES` or
`REPORT_FILES` before anything is written (`check_columns`): a column that is not listed for its
file, or a personal-data column (`PERSONAL_COLUMNS`) whose kind is not configured, is an
`ExportError` naming the file and the column. The lists are written out here on purpose, apart
from the code that builds the files: adding a column to a file means adding it here too.

Free text can carry personal data as well: a quarantined source row is kept whole (as JSON) in
its finding's `detail`, and a billing account row holds the account's name. `redact_detail`
withholds the personal fields of such a row (and raw Stripe objects, which hold customers'
emails, addresses and phones) unless configured. docs/exports.md, "Personal data".
"""

from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Iterable

from meterline.config import PERSONAL_DATA
from meterline.dbt import DBT_PROJECT_DIR
from meterline.errors import ExportError

# A column that holds personal data, and its kind (meterline.config.PERSONAL_DATA).
PERSONAL_COLUMNS: dict[str, str] = {
    "account_name": "name",
    "customer_name": "name",
    "contact_name": "name",
    "email": "email",
    "customer_email": "email",
    "receipt_email": "email",
    "billing_email": "email",
    "address": "address",
    "billing_address": "address",
    "shipping_address": "address",
    "phone": "phone",
    "customer_phone": "phone",
}
# Columns of source rows (quarantine JSON) that are personal data although their name is generic:
# (raw table, column) -> kind. `name` of a plan is not personal; `name` of an account is.
PERSONAL_SOURCE_COLUMNS: dict[tuple[str, str], str] = {
    ("billing_accounts", "name"): "name",
    ("stripe_customers", "email"): "email",
}
# Raw Stripe objects (every stripe_* raw table keeps the whole API object): a customer's holds
# its name, email, address, phone and shipping; never exported, whatever is configured.
WITHHELD_SOURCE_COLUMNS = frozenset({"object_json"})
WITHHELD = "[withheld: personal data]"

# a column named after a data category (flash_usage_days: one column per category)
DATA_CATEGORY = "<data category>"
XERO_STEM = re.compile(r"^xero_manual_journals_[A-Z]{3}(_part\d{2,})?$")

ACCOUNTING_FILES: dict[str, tuple[str, ...]] = {
    "journal_entries": (
        "journal_line_id", "entry_id", "entry_date", "accounting_period", "entry_type", "account_id",
        "currency", "gl_key", "gl_account", "gl_account_name", "product", "debit_minor",
        "credit_minor", "debit_amount", "credit_amount", "memo", "is_catchup", "service_period",
        "reference"),
    "qbo_journal_entries": (
        "Journal No", "Journal Date", "Account Name", "Description", "Debits", "Credits", "Name",
        "Currency"),
    "xero_manual_journals_<CUR>": (
        "*Narration", "*Date", "Description", "*AccountCode", "*TaxRate", "*Amount",
        "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2"),
    "netsuite_journal_entries": (
        "External ID", "Date", "Posting Period", "Subsidiary", "Currency", "Memo", "Account",
        "Debit", "Credit", "Line Memo", "Name"),
    "revenue_by_product": (
        "accounting_period", "currency", "product", "revenue_minor", "revenue_amount",
        "catchup_revenue_minor", "catchup_revenue_amount"),
    "revenue_by_account": (
        "account_id", "currency", "product", "revenue_minor", "revenue_amount",
        "catchup_revenue_minor", "catchup_revenue_amount"),
    "deferred_revenue_waterfall": (
        "currency", "origin_period", "recognition_period", "recognized_minor", "recognized_amount",
        "remaining_minor", "remaining_amount"),
    "balance_rollforward": (
        "accounting_period", "currency", "balance", "opening_minor", "billed_minor",
        "recognized_minor", "voided_minor", "catchup_minor", "closing_minor", "opening_amount",
        "billed_amount", "recognized_amount", "voided_amount", "catchup_amount", "closing_amount"),
    "invoice_register": (
        "invoice_id", "account_id", "period", "currency", "total_minor", "line_count", "version",
        "content_hash", "state", "total_amount"),
    "invoice_lines": (
        "invoice_line_id", "invoice_id", "account_id", "period", "service_period", "line_key",
        "line_type", "category", "currency", "quantity", "amount_minor"),
}

_FINDINGS = ("check_name", "status", "account_id", "category", "period", "day", "object_id", "reason",
             "difference", "detail")
_PAYMENT_EVENTS = ("kind", "object_id", "account_id", "billed_period", "currency", "amount", "in_amount",
                   "status", "created_at")
REPORT_FILES: dict[str, tuple[str, ...]] = {
    # the daily flash
    "flash_money": ("currency", "measure", "day", "month_to_date", "previous_month_to_date", "change_pct"),
    "flash_usage": ("category", "unit", "day", "last_7_days", "prior_7_days", "trend_pct", "month_to_date",
                    "accounts"),
    "flash_usage_days": ("day", DATA_CATEGORY),
    "flash_drift_summary": ("check_name", "status", "findings", "rows_compared"),
    "flash_drift_findings": _FINDINGS,
    "flash_at_risk_totals": ("currency", "kind", "count", "amount"),
    "flash_at_risk": ("kind", "object_id", "account_id", "billed_period", "currency", "amount", "reason",
                      "status", "created_at"),
    # the month-end pack
    "pack_revenue_by_product": ("currency", "product", "revenue", "share_pct", "of_which_catch_up"),
    "pack_top_accounts": ("currency", "rank", "account_id", "account_name", "revenue", "share_pct", "billed"),
    "pack_mrr_bridge": ("currency", "opening_mrr", "carried_in", "new", "expansion", "reactivation",
                        "contraction", "churn", "closing_mrr", "closing_arr", "paying_accounts"),
    "pack_mrr_accounts": ("currency", "account_id", "movement", "opening_mrr", "change", "mrr", "arr"),
    "pack_deferred_revenue": ("currency", "balance", "opening", "billed", "recognized", "voided", "catchup",
                              "closing"),
    "pack_deferred_waterfall": ("currency", "origin_period", "sold", "recognized", "remaining"),
    "pack_receivables_aging": ("currency", "bucket", "invoices", "open_amount"),
    "pack_open_invoices": ("invoice_id", "account_id", "period", "currency", "invoice_date", "due_date",
                           "total", "collected", "credited", "open", "days_past_due", "bucket"),
    "pack_payment_events_summary": ("currency", "kind", "count", "in_amount", "amount", "still_open"),
    "pack_payment_events": _PAYMENT_EVENTS,
    "pack_reconciliation_status": ("check_name", "status", "kind", "rows", "findings"),
    "pack_reconciliation_findings": _FINDINGS,
}


@functools.cache
def data_categories() -> frozenset[str]:
    """The data categories (the dbt seed `categories`, the one place they are listed; a row of
    any other category is quarantined at ingest)."""
    with (DBT_PROJECT_DIR / "seeds" / "categories.csv").open(newline="", encoding="utf-8") as f:
        return frozenset(row["category"] for row in csv.DictReader(f))


def file_key(stem: str) -> str:
    """The allow-list entry of a file stem (the Xero files are one per currency and part)."""
    return "xero_manual_journals_<CUR>" if XERO_STEM.match(stem) else stem


def allowed_columns(stem: str) -> tuple[str, ...]:
    key = file_key(stem)
    if key in ACCOUNTING_FILES:
        return ACCOUNTING_FILES[key]
    if key in REPORT_FILES:
        return REPORT_FILES[key]
    raise ExportError(f"{stem}: not an allow-listed export file (exports/columns.py)")


def personal_kind(column: str) -> str | None:
    return PERSONAL_COLUMNS.get(column)


def exported_columns(stem: str, personal: Iterable[str] = ()) -> list[str]:
    """The allow-listed columns of `stem` that may be written with `personal` configured, in
    order (DATA_CATEGORY stands for any data category)."""
    allowed = set(personal)
    return [c for c in allowed_columns(stem) if personal_kind(c) is None or personal_kind(c) in allowed]


def check_columns(stem: str, columns: Iterable[str], personal: Iterable[str] = ()) -> None:
    """Raise ExportError unless every column of file `stem` is allow-listed for it and no
    personal-data column of a kind not in `personal` is among them."""
    allowed = set(allowed_columns(stem))
    kinds = set(personal)
    bad, private = [], []
    for column in columns:
        listed = column in allowed or (DATA_CATEGORY in allowed and column in data_categories())
        if not listed:
            bad.append(column)
        elif personal_kind(column) is not None and personal_kind(column) not in kinds:
            private.append(column)
    if bad:
        raise ExportError(f"{stem}: column(s) {', '.join(map(repr, bad))} not in the export allow-list "
                          "(exports/columns.py)")
    if private:
        raise ExportError(f"{stem}: personal data column(s) {', '.join(private)} not enabled by "
                          "[exports] include_personal_data")


def _source_kind(raw_table: str | None, column: str) -> str | None:
    if raw_table is not None and (raw_table, column) in PERSONAL_SOURCE_COLUMNS:
        return PERSONAL_SOURCE_COLUMNS[(raw_table, column)]
    kind = personal_kind(column)
    if kind is not None:
        return kind
    for k in PERSONAL_DATA:  # any column named like one of the kinds: customer_email, phone_number...
        if k != "name" and k in column.lower():
            return k
    return None


_ROW = re.compile(r"(?:^|\s)table=(?P<table>\S+)\s+row=")


def redact_detail(detail: str | None, personal: Iterable[str] = ()) -> str | None:
    """A finding's detail with the personal fields of the source row it quotes withheld.

    Quarantine findings quote the whole source row: `batch=... table=<raw table> row=<JSON>`.
    Each field whose kind is not in `personal` (and every raw Stripe object) becomes WITHHELD;
    a row that does not parse as JSON is withheld whole. Other details are counts and ids."""
    if not detail or "row=" not in detail:
        return detail
    kinds = set(personal)
    m = _ROW.search(detail)
    start = detail.find("row=") if m is None else m.end() - len("row=")
    head, text = detail[:start + len("row=")], detail[start + len("row="):]
    table = m.group("table") if m else None
    try:
        row, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return head + WITHHELD
    if not isinstance(row, dict) or text[end:].strip():
        return head + WITHHELD
    withheld = False
    for column in list(row):
        kind = _source_kind(table, column)
        if column in WITHHELD_SOURCE_COLUMNS or (kind is not None and kind not in kinds):
            if row[column] is not None:
                row[column] = WITHHELD
                withheld = True
    if not withheld:
        return detail
    return head + json.dumps(row, ensure_ascii=False, separators=(",", ":"))
