"""Accountant exports of a closed period: every file as bytes, from plain rows.

`build_accounting_exports` takes the rows of one closed period as plain Python data (lists of
dicts, as fetched from the dbt marts) and returns `{file name: bytes}`: the generic journal, the
journal-import layouts of QuickBooks Online, Xero and NetSuite, revenue by product and by
account, the deferred revenue waterfall, the balance rollforward, the invoice register and
invoice lines, each as CSV and as XLSX, and a `manifest.json` over all of them.

Pure and deterministic: no warehouse, no clock, no randomness, no locale. The same rows give
byte-identical files on any machine (rows are sorted by stable keys, XLSX document dates come
from the period, XLSX packages are re-zipped uncompressed with fixed entry timestamps).
Money is integer minor units in and exact decimal text out (`format_minor`), never a float.

Everything is validated before anything is built: an unmapped GL account, an unbalanced entry,
an unknown currency or a malformed row raises `ExportError` naming the rows, and no file is
produced. docs/exports.md describes every file and the sources the import layouts follow.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exports.columns import check_columns
from meterline.errors import ExportError

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Excel keeps 15 significant digits: numbers with more are written as exact text instead.
EXCEL_DIGITS = 15
EXCEL_MAX_ROWS = 1_048_576  # rows per worksheet, header included
MAX_REPORTED = 10

ENTRY_TYPES = frozenset({
    "invoice", "recognition", "credit_grant", "breakage", "charge", "stripe_fee", "refund",
    "credit_note", "payout", "void", "catchup",
})

# Today's invoice files (exports/close.py INVOICE_COLUMNS / LINE_COLUMNS): kept as they are so
# existing consumers do not break. The register only appends columns.
INVOICE_COLUMNS = [
    "invoice_id", "account_id", "period", "currency", "total_minor", "line_count", "version",
    "content_hash",
]
LINE_COLUMNS = [
    "invoice_line_id", "invoice_id", "account_id", "period", "service_period", "line_key",
    "line_type", "category", "currency", "quantity", "amount_minor",
]
INVOICE_REGISTER_COLUMNS = [*INVOICE_COLUMNS, "state", "total_amount"]

JOURNAL_COLUMNS = [
    "journal_line_id", "entry_id", "entry_date", "accounting_period", "entry_type", "account_id",
    "currency", "gl_key", "gl_account", "gl_account_name", "product", "debit_minor",
    "credit_minor", "debit_amount", "credit_amount", "memo", "is_catchup", "service_period",
    "reference",
]

# QuickBooks Online, Settings > Import data > Journal entries. Columns as Intuit's help article
# "Import journal entries" lists them (Journal No, Journal Date, Account Name, Description,
# Debits, Credits, Name), plus Currency, which multicurrency companies map. Dates MM/DD/YYYY
# (US company format), debits and credits as positive numbers, the other side blank.
QBO_COLUMNS = [
    "Journal No", "Journal Date", "Account Name", "Description", "Debits", "Credits", "Name",
    "Currency",
]
# Xero, Manual Journals > Import: the columns of Xero's manual journal template (help article
# "Enter multiple manual journals using an import template"; '*' marks mandatory columns).
# Date dd/mm/yyyy; Amount is a debit when positive and a credit when negative; one journal per
# Narration + Date; at most 300 lines per file; no currency column (manual journals are in the
# organisation's base currency), so one file per currency.
XERO_COLUMNS = [
    "*Narration", "*Date", "Description", "*AccountCode", "*TaxRate", "*Amount",
    "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2",
]
# NetSuite, Setup > Import/Export > Import CSV Records > Transactions > Journal Entry: one row
# per line, header fields repeated on every line, lines of one journal share the External ID
# (NetSuite help "Journal Entry and Intercompany Journal Entry Header Fields Table" and
# "... Line-Level Fields Table"). Debit and Credit positive; Subsidiary required in OneWorld.
NETSUITE_COLUMNS = [
    "External ID", "Date", "Posting Period", "Subsidiary", "Currency", "Memo", "Account",
    "Debit", "Credit", "Line Memo", "Name",
]

REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "journal_lines": (
        "journal_line_id", "entry_id", "entry_date", "accounting_period", "entry_type",
        "account_id", "currency", "gl_key", "gl_account", "gl_account_name", "product",
        "debit_minor", "credit_minor", "memo", "is_catchup", "service_period", "reference",
    ),
    "revenue_daily": (
        "account_id", "currency", "product", "revenue_date", "accounting_period",
        "service_period", "revenue_minor", "is_catchup",
    ),
    "rollforward": (
        "currency", "accounting_period", "balance", "opening_minor", "billed_minor",
        "recognized_minor", "voided_minor", "catchup_minor", "closing_minor",
    ),
    "waterfall": (
        "currency", "origin_period", "recognition_period", "recognized_minor", "remaining_minor",
    ),
    "invoices": (*INVOICE_COLUMNS, "state"),
    "invoice_lines": tuple(LINE_COLUMNS),
}
MONEY_KEYS: dict[str, tuple[str, ...]] = {
    "journal_lines": ("debit_minor", "credit_minor"),
    "revenue_daily": ("revenue_minor",),
    "rollforward": ("opening_minor", "billed_minor", "recognized_minor", "voided_minor", "catchup_minor",
                    "closing_minor"),
    "waterfall": ("recognized_minor", "remaining_minor"),
    "invoices": ("total_minor",),
    "invoice_lines": ("amount_minor",),
}


@dataclass(frozen=True)
class ExportOptions:
    """Settings of the import layouts that depend on the accountant's ledger, not on our data."""

    # NetSuite OneWorld requires a subsidiary on every journal: one for all, or one per currency.
    netsuite_subsidiary: str = "Parent Company"
    netsuite_subsidiary_by_currency: Mapping[str, str] = field(default_factory=dict)
    # NetSuite matches Currency against its currency records; ISO codes unless mapped here.
    netsuite_currency_names: Mapping[str, str] = field(default_factory=dict)
    # Xero requires a tax rate name on every manual journal line, as named in the organisation.
    xero_tax_rate: str = "Tax Exempt"
    # Xero's manual journal import takes at most 300 lines per file.
    xero_max_lines: int = 300


@dataclass(frozen=True)
class Money:
    """An amount in integer minor units of `currency`, rendered exactly with its exponent."""

    minor: int
    currency: str
    exponent: int

    def text(self) -> str:
        return format_minor(self.minor, self.exponent)


@dataclass
class Table:
    """One export file's content before it is rendered as CSV and XLSX."""

    stem: str
    columns: list[str]
    rows: list[list[Any]]
    # Columns summed per currency on the XLSX Summary sheet: Money cells, or int minor units
    # whose currency is in `currency_column`.
    totals: tuple[str, ...] = ()
    currency_column: str | None = None
    # Journal check on the Summary sheet: ("split", debit column, credit column) or
    # ("signed", amount column) where positive is a debit.
    balance: tuple[str, ...] | None = None
    # Shown on the Summary sheet instead of totals, when summing makes no sense.
    note: str | None = None


def format_minor(minor: int, exponent: int) -> str:
    """Integer minor units as an exact decimal string in major units.

    1234 with exponent 2 -> "12.34"; with 0 -> "1234"; with 3 -> "1.234"; -5 with 2 -> "-0.05".
    """
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be an int, got {minor!r}")
    if isinstance(exponent, bool) or not isinstance(exponent, int) or exponent < 0:
        raise TypeError(f"exponent must be an int >= 0, got {exponent!r}")
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor))
    if exponent == 0:
        return sign + digits
    digits = digits.rjust(exponent + 1, "0")
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


# ----------------------------------------------------------------------------- validation


def _fail(period: str, what: str, problems: list[str]) -> None:
    if not problems:
        return
    shown = "; ".join(problems[:MAX_REPORTED])
    more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
    raise ExportError(f"cannot export {period}: {what}: {shown}{more}")


def _as_minor(value: Any) -> int | None:
    """An integer amount, or None when `value` is not exact integer minor units (floats never
    are; an integral Decimal, as PostgreSQL returns sums, is)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


def _row_name(dataset: str, row: Mapping[str, Any], index: int) -> str:
    for key in ("journal_line_id", "invoice_line_id", "invoice_id"):
        if key in row and row[key] is not None:
            prefix = {"journal_line_id": "journal line", "invoice_line_id": "invoice line",
                      "invoice_id": "invoice"}[key]
            extra = ""
            if key == "journal_line_id" and row.get("entry_id"):
                extra = f" of entry {row['entry_id']}"
            return f"{prefix} {row[key]}{extra}"
    if dataset == "revenue_daily":
        return (f"revenue row {index} (account {row.get('account_id')}, "
                f"{row.get('revenue_date')}, product {row.get('product')})")
    if dataset == "waterfall":
        return (f"waterfall row {index} "
                f"({row.get('origin_period')} -> {row.get('recognition_period')})")
    if dataset == "rollforward":
        return f"rollforward row {index} ({row.get('accounting_period')}, {row.get('balance')})"
    return f"{dataset} row {index}"


def _normalize(
    period: str,
    datasets: dict[str, Sequence[Mapping[str, Any]]],
    currencies: Mapping[str, int],
) -> dict[str, list[dict[str, Any]]]:
    """Check shapes, types and currencies; return copies with exact ints and plain dates."""
    if not isinstance(period, str) or not PERIOD_RE.match(period):
        raise ExportError(f"period must look like YYYY-MM, got {period!r}")
    problems: list[str] = []
    for code, exponent in sorted(currencies.items()):
        if isinstance(exponent, bool) or not isinstance(exponent, int) or exponent < 0:
            problems.append(f"currency {code} has exponent {exponent!r}, not an int >= 0")
    _fail(period, "bad currency table", problems)

    out: dict[str, list[dict[str, Any]]] = {}
    for dataset, rows in datasets.items():
        required = REQUIRED_KEYS[dataset]
        normalized: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            missing = [k for k in required if k not in row]
            name = _row_name(dataset, row, index)
            if missing:
                problems.append(f"{name} lacks {', '.join(missing)}")
                continue
            new = dict(row)
            for key in MONEY_KEYS[dataset]:
                minor = _as_minor(row[key])
                if minor is None:
                    problems.append(f"{name}: {key} = {row[key]!r} is not integer minor units")
                else:
                    new[key] = minor
            currency = row["currency"]
            if currency not in currencies:
                problems.append(f"{name}: currency {currency!r} has no known minor-unit exponent")
            if dataset == "journal_lines":
                for key in ("debit_minor", "credit_minor"):
                    if isinstance(new[key], int) and new[key] < 0:
                        problems.append(f"{name}: {key} = {new[key]} is negative")
                day = _as_date(row["entry_date"])
                if day is None:
                    problems.append(f"{name}: entry_date {row['entry_date']!r} is not a date")
                new["entry_date"] = day
                if row["entry_type"] not in ENTRY_TYPES:
                    problems.append(f"{name}: unknown entry_type {row['entry_type']!r}")
            if dataset == "revenue_daily":
                day = _as_date(row["revenue_date"])
                if day is None:
                    problems.append(f"{name}: revenue_date {row['revenue_date']!r} is not a date")
                new["revenue_date"] = day
            normalized.append(new)
        out[dataset] = normalized
    _fail(period, "rows do not follow the export contract", problems)
    return out


def _check_journal(period: str, lines: list[dict[str, Any]], currencies: Mapping[str, int]) -> None:
    problems: list[str] = []
    seen: set[str] = set()
    for line in lines:
        lid = line["journal_line_id"]
        if lid in seen:
            problems.append(f"journal_line_id {lid} appears more than once")
        seen.add(lid)
    _fail(period, "duplicate journal lines", problems)

    for line in lines:
        if line["gl_account"] is None or line["gl_account"] == "":
            problems.append(f"entry {line['entry_id']} (line {line['journal_line_id']}): "
                            f"unmapped GL account for gl_key {line['gl_key']!r}")
    _fail(period, "unmapped GL account", problems)

    by_entry: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        if line["debit_minor"] and line["credit_minor"]:
            problems.append(f"entry {line['entry_id']} (line {line['journal_line_id']}) has both "
                            f"a debit and a credit")
        by_entry[line["entry_id"]].append(line)
    for entry_id, entry_lines in sorted(by_entry.items()):
        for key in ("entry_date", "accounting_period", "entry_type"):
            values = sorted({str(x[key]) for x in entry_lines})
            if len(values) > 1:
                problems.append(f"entry {entry_id} has lines with several {key}s: {', '.join(values)}")
    _fail(period, "malformed journal entries", problems)

    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        acc = sums[(line["entry_id"], line["currency"])]
        acc[0] += line["debit_minor"]
        acc[1] += line["credit_minor"]
    for (entry_id, currency), (debit, credit) in sorted(sums.items()):
        if debit != credit:
            exp = currencies[currency]
            problems.append(
                f"entry {entry_id} in {currency}: debits {format_minor(debit, exp)} != credits "
                f"{format_minor(credit, exp)} (difference {format_minor(debit - credit, exp)} "
                f"{currency}, {debit - credit} minor units)")
    _fail(period, "unbalanced journal entry", problems)
    _check_period_balance(period, lines, currencies)


def _check_period_balance(period: str, lines: list[dict[str, Any]], currencies: Mapping[str, int]) -> None:
    """Debits = credits per accounting period and currency. Implied by the per-entry checks
    before it (each entry balanced per currency, one accounting period per entry); kept as the
    close's own stated invariant over the whole file."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        acc = sums[(line["accounting_period"], line["currency"])]
        acc[0] += line["debit_minor"]
        acc[1] += line["credit_minor"]
    problems = [
        f"accounting period {p} in {c}: debits {format_minor(d, currencies[c])} != credits "
        f"{format_minor(k, currencies[c])} (difference {format_minor(d - k, currencies[c])} {c})"
        for (p, c), (d, k) in sorted(sums.items()) if d != k
    ]
    _fail(period, "unbalanced accounting period", problems)


def validate_inputs(
    period: str,
    *,
    journal_lines: Sequence[Mapping[str, Any]],
    revenue_daily: Sequence[Mapping[str, Any]],
    rollforward: Sequence[Mapping[str, Any]],
    waterfall: Sequence[Mapping[str, Any]],
    invoices: Sequence[Mapping[str, Any]],
    invoice_lines: Sequence[Mapping[str, Any]],
    currencies: Mapping[str, int],
) -> dict[str, list[dict[str, Any]]]:
    """Raise `ExportError` naming the rows if the period cannot be exported; else return the
    rows normalized (exact ints, plain dates)."""
    data = _normalize(period, {
        "journal_lines": journal_lines, "revenue_daily": revenue_daily,
        "rollforward": rollforward, "waterfall": waterfall, "invoices": invoices,
        "invoice_lines": invoice_lines,
    }, currencies)
    _check_journal(period, data["journal_lines"], currencies)
    return data


# ----------------------------------------------------------------------------- tables


def _sort_text(value: Any) -> tuple[int, str]:
    return (0, "") if value is None else (1, str(value))


def _us_date(day: dt.date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def _xero_date(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def _netsuite_period(accounting_period: str) -> str:
    year, month = accounting_period.split("-")
    return f"{MONTH_ABBR[int(month) - 1]} {year}"


def _journal_numbers(lines: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """One import journal per entry and currency: the entry_id, suffixed with the currency only
    for an entry that has lines in more than one currency (each currency part is balanced)."""
    currencies_of: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        currencies_of[line["entry_id"]].add(line["currency"])
    return {
        (entry_id, cur): entry_id if len(curs) == 1 else f"{entry_id}-{cur}"
        for entry_id, curs in currencies_of.items() for cur in curs
    }


def _journal_key(line: dict[str, Any]) -> tuple[Any, ...]:
    return (line["entry_date"], line["entry_id"], line["currency"], line["journal_line_id"])


def _journal_tables(lines: list[dict[str, Any]], currencies: Mapping[str, int],
                    options: ExportOptions) -> list[Table]:
    ordered = sorted(lines, key=_journal_key)

    def money(line: dict[str, Any], key: str) -> Money:
        return Money(line[key], line["currency"], currencies[line["currency"]])

    generic = Table(
        "journal_entries", JOURNAL_COLUMNS,
        [[line["journal_line_id"], line["entry_id"], line["entry_date"], line["accounting_period"],
          line["entry_type"], line["account_id"], line["currency"], line["gl_key"],
          line["gl_account"], line["gl_account_name"], line["product"], line["debit_minor"],
          line["credit_minor"], money(line, "debit_minor"), money(line, "credit_minor"),
          line["memo"], bool(line["is_catchup"]), line["service_period"], line["reference"]]
         for line in ordered],
        balance=("split", "debit_amount", "credit_amount"),
    )

    numbers = _journal_numbers(ordered)

    def sides(line: dict[str, Any]) -> tuple[Money | None, Money | None]:
        # The side that carries the amount; a zero line keeps a zero debit so it stays a line.
        if line["credit_minor"]:
            return None, money(line, "credit_minor")
        return money(line, "debit_minor"), None

    qbo_rows = []
    ns_rows = []
    for line in ordered:
        debit, credit = sides(line)
        number = numbers[(line["entry_id"], line["currency"])]
        qbo_rows.append([
            number, _us_date(line["entry_date"]), line["gl_account_name"] or line["gl_account"],
            line["memo"], debit, credit, line["account_id"], line["currency"],
        ])
        ns_rows.append([
            number, _us_date(line["entry_date"]), _netsuite_period(line["accounting_period"]),
            options.netsuite_subsidiary_by_currency.get(line["currency"], options.netsuite_subsidiary),
            options.netsuite_currency_names.get(line["currency"], line["currency"]),
            f"{line['entry_type']} {line['entry_id']}", line["gl_account"], debit, credit,
            line["memo"], line["account_id"],
        ])
    qbo = Table("qbo_journal_entries", QBO_COLUMNS, qbo_rows,
                balance=("split", "Debits", "Credits"))
    netsuite = Table("netsuite_journal_entries", NETSUITE_COLUMNS, ns_rows,
                     balance=("split", "Debit", "Credit"))
    return [generic, qbo, *_xero_tables(ordered, numbers, currencies, options), netsuite]


def _xero_tables(ordered: list[dict[str, Any]], numbers: dict[tuple[str, str], str],
                 currencies: Mapping[str, int], options: ExportOptions) -> list[Table]:
    """One file per currency; a currency with more lines than Xero imports per file is split
    into parts at journal boundaries (a journal is never split; one larger than the limit gets
    a part of its own)."""
    tables: list[Table] = []
    by_currency: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for line in ordered:
        journals = by_currency[line["currency"]]
        number = numbers[(line["entry_id"], line["currency"])]
        if not journals or journals[-1][0]["_number"] != number:
            journals.append([])
        journals[-1].append({**line, "_number": number})
    for currency, journals in sorted(by_currency.items()):
        parts: list[list[dict[str, Any]]] = [[]]
        for journal in journals:
            if parts[-1] and len(parts[-1]) + len(journal) > options.xero_max_lines:
                parts.append([])
            parts[-1].extend(journal)
        width = max(2, len(str(len(parts))))  # part001 .. part100: names sort in order
        for index, part in enumerate(parts, start=1):
            stem = f"xero_manual_journals_{currency}"
            if len(parts) > 1:
                stem += f"_part{index:0{width}d}"
            rows = [[
                line["_number"], _xero_date(line["entry_date"]), line["memo"], line["gl_account"],
                options.xero_tax_rate,
                Money(line["debit_minor"] - line["credit_minor"], currency, currencies[currency]),
                None, None, None, None,
            ] for line in part]
            tables.append(Table(stem, XERO_COLUMNS, rows, balance=("signed", "*Amount")))
    return tables


def _revenue_tables(rows: list[dict[str, Any]], currencies: Mapping[str, int]) -> list[Table]:
    def summed(keys: tuple[str, ...]) -> list[tuple[tuple[Any, ...], list[int]]]:
        acc: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
        for row in rows:
            sums = acc[tuple(row[k] for k in keys)]
            sums[0] += row["revenue_minor"]
            if row["is_catchup"]:
                sums[1] += row["revenue_minor"]
        return sorted(acc.items(), key=lambda kv: tuple(_sort_text(v) for v in kv[0]))

    def table(stem: str, keys: tuple[str, ...]) -> Table:
        out = []
        cur_index = keys.index("currency")
        for key, (total, catchup) in summed(keys):
            cur = key[cur_index]
            exp = currencies[cur]
            out.append([*key, total, Money(total, cur, exp), catchup, Money(catchup, cur, exp)])
        return Table(stem, [*keys, "revenue_minor", "revenue_amount", "catchup_revenue_minor",
                            "catchup_revenue_amount"], out,
                     totals=("revenue_amount", "catchup_revenue_amount"))

    return [
        table("revenue_by_product", ("accounting_period", "currency", "product")),
        table("revenue_by_account", ("account_id", "currency", "product")),
    ]


def _waterfall_table(rows: list[dict[str, Any]], currencies: Mapping[str, int]) -> Table:
    ordered = sorted(rows, key=lambda r: (r["currency"], r["origin_period"], r["recognition_period"]))
    out = []
    for r in ordered:
        exp = currencies[r["currency"]]
        out.append([r["currency"], r["origin_period"], r["recognition_period"],
                    r["recognized_minor"], Money(r["recognized_minor"], r["currency"], exp),
                    r["remaining_minor"], Money(r["remaining_minor"], r["currency"], exp)])
    return Table("deferred_revenue_waterfall",
                 ["currency", "origin_period", "recognition_period", "recognized_minor",
                  "recognized_amount", "remaining_minor", "remaining_amount"], out,
                 totals=("recognized_amount",))


def _rollforward_table(rows: list[dict[str, Any]], currencies: Mapping[str, int]) -> Table:
    keys = MONEY_KEYS["rollforward"]
    ordered = sorted(rows, key=lambda r: (r["accounting_period"], r["currency"], r["balance"]))
    out = []
    for r in ordered:
        exp = currencies[r["currency"]]
        out.append([r["accounting_period"], r["currency"], r["balance"],
                    *[r[k] for k in keys],
                    *[Money(r[k], r["currency"], exp) for k in keys]])
    return Table("balance_rollforward",
                 ["accounting_period", "currency", "balance", *keys,
                  *[k.replace("_minor", "_amount") for k in keys]], out,
                 note="no totals: each row is one balance's rollforward in one currency")


def _invoice_tables(invoices: list[dict[str, Any]], lines: list[dict[str, Any]],
                    currencies: Mapping[str, int]) -> list[Table]:
    register = Table(
        "invoice_register", INVOICE_REGISTER_COLUMNS,
        [[*(inv[c] for c in INVOICE_COLUMNS), inv["state"],
          Money(inv["total_minor"], inv["currency"], currencies[inv["currency"]])]
         for inv in sorted(invoices, key=lambda r: str(r["invoice_id"]))],
        totals=("total_amount",),
    )
    line_table = Table(
        "invoice_lines", LINE_COLUMNS,
        [[line[c] for c in LINE_COLUMNS]
         for line in sorted(lines, key=lambda r: str(r["invoice_line_id"]))],
        totals=("amount_minor",), currency_column="currency",
    )
    return [register, line_table]


# ----------------------------------------------------------------------------- rendering


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Money):
        return value.text()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _csv_bytes(table: Table) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return buf.getvalue().encode("utf-8")


def _significant_digits(value: Decimal) -> int:
    return len(value.as_tuple().digits)


def _summary(table: Table, currencies: Mapping[str, int]) -> tuple[list[str], list[list[Any]]]:
    """Per currency: the sums of `table.totals` and, for journals, debits, credits and whether
    they are equal, recomputed from the file's own rows (major units, then minor units)."""
    index = {c: i for i, c in enumerate(table.columns)}
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(row: list[Any], column: str, key: str, sign: int = 1) -> None:
        value = row[index[column]]
        if value is None:
            return
        if isinstance(value, Money):
            sums[value.currency][key] += sign * value.minor
        else:
            assert table.currency_column is not None
            sums[row[index[table.currency_column]]][key] += sign * int(value)

    for row in table.rows:
        for column in table.totals:
            add(row, column, column)
        if table.balance and table.balance[0] == "split":
            add(row, table.balance[1], "debits")
            add(row, table.balance[2], "credits")
        elif table.balance:
            value = row[index[table.balance[1]]]
            add(row, table.balance[1], "debits" if value.minor > 0 else "credits",
                1 if value.minor > 0 else -1)

    keys = list(table.totals) + (["debits", "credits"] if table.balance else [])
    labels = [re.sub(r"_(amount|minor)$", "", k) for k in keys]
    header = ["currency", *[f"sum of {label}" for label in labels]]
    if table.balance:
        header += ["difference", "debits = credits"]
    header += [f"sum of {label} (minor units)" for label in labels]
    body = []
    for cur in sorted(sums):
        exp = currencies[cur]
        values = sums[cur]
        line: list[Any] = [cur, *[Money(values[k], cur, exp) for k in keys]]
        if table.balance:
            debits, credits = values["debits"], values["credits"]
            line += [Money(debits - credits, cur, exp), "yes" if debits == credits else "NO"]
        line += [values[k] for k in keys]
        body.append(line)
    return header, body


def _normalize_zip(data: bytes) -> bytes:
    """Re-pack an XLSX with every entry stored (uncompressed), in the same order, with fixed
    timestamps and attributes: the bytes then depend on neither the zlib build nor the OS that
    wrote them (XlsxWriter's deflate output and ZIP headers could)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_STORED
            entry.create_system = 0
            entry.external_attr = 0
            dst.writestr(entry, src.read(info))
    return out.getvalue()


def _xlsx_bytes(table: Table, period: str, csv_name: str, currencies: Mapping[str, int]) -> bytes:
    import xlsxwriter

    start_year, start_month = (int(x) for x in period.split("-"))
    # Document dates come from the period (the instant it ended), never from the clock.
    closed_at = dt.datetime(start_year + start_month // 12, start_month % 12 + 1, 1,
                            tzinfo=dt.UTC)
    buf = io.BytesIO()
    workbook = xlsxwriter.Workbook(buf, {"in_memory": True})
    workbook.set_properties({
        "title": f"{table.stem} {period}",
        "subject": f"meterline accountant export, period {period}",
        "author": "meterline",
        "company": "",
        "created": closed_at,
    })
    bold = workbook.add_format({"bold": True})
    formats: dict[str, Any] = {}

    def fmt(num_format: str) -> Any:
        if num_format not in formats:
            formats[num_format] = workbook.add_format({"num_format": num_format})
        return formats[num_format]

    def money_format(exponent: int) -> Any:
        return fmt("#,##0" + ("." + "0" * exponent if exponent else ""))

    def write(sheet: Any, r: int, c: int, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Money):
            exact = Decimal(value.text())
            if _significant_digits(exact) <= EXCEL_DIGITS:
                sheet.write_number(r, c, exact, money_format(value.exponent))
            else:
                sheet.write_string(r, c, value.text())
        elif isinstance(value, bool):
            sheet.write_boolean(r, c, value)
        elif isinstance(value, int):
            if len(str(abs(value))) <= EXCEL_DIGITS:
                sheet.write_number(r, c, value, fmt("0"))
            else:
                sheet.write_string(r, c, str(value))
        elif isinstance(value, Decimal):
            if value.is_finite() and _significant_digits(value) <= EXCEL_DIGITS:
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, str(value))
        elif isinstance(value, dt.date):
            sheet.write_datetime(r, c, value, fmt("yyyy-mm-dd"))
        else:
            sheet.write_string(r, c, str(value))

    summary = workbook.add_worksheet("Summary")
    # A table longer than one sheet holds continues on "Data 2", "Data 3", ...
    per_sheet = EXCEL_MAX_ROWS - 1
    chunks = [table.rows[i:i + per_sheet] for i in range(0, len(table.rows), per_sheet)] or [[]]
    names = ["Data", *[f"Data {n}" for n in range(2, len(chunks) + 1)]]
    facts = [("period", period), ("file", f"{table.stem}.xlsx"), ("same data as", csv_name),
             ("data sheet", ", ".join(names)), ("rows", len(table.rows))]
    for r, (label, value) in enumerate(facts):
        summary.write_string(r, 0, label, bold)
        write(summary, r, 1, value)
    header, body = _summary(table, currencies)
    if table.note:
        summary.write_string(len(facts) + 1, 0, table.note)
    if len(header) > 1:
        top = len(facts) + 1
        for c, name in enumerate(header):
            summary.write_string(top, c, name, bold)
        for r, line in enumerate(body, start=top + 1):
            for c, value in enumerate(line):
                write(summary, r, c, value)
    summary.set_column(0, max(len(header), 2) - 1, 22)

    for sheet_name, chunk in zip(names, chunks, strict=True):
        data = workbook.add_worksheet(sheet_name)
        for c, name in enumerate(table.columns):
            data.write_string(0, c, name, bold)
            data.set_column(c, c, max(12, min(40, len(name) + 2)))
        for r, row in enumerate(chunk, start=1):
            for c, value in enumerate(row):
                write(data, r, c, value)
        data.freeze_panes(1, 0)
        data.autofilter(0, 0, max(len(chunk), 1), len(table.columns) - 1)
    workbook.close()
    return _normalize_zip(buf.getvalue())


# ----------------------------------------------------------------------------- entry point


def build_accounting_exports(
    period: str,
    *,
    journal_lines: Sequence[Mapping[str, Any]],
    revenue_daily: Sequence[Mapping[str, Any]],
    rollforward: Sequence[Mapping[str, Any]],
    waterfall: Sequence[Mapping[str, Any]],
    invoices: Sequence[Mapping[str, Any]],
    invoice_lines: Sequence[Mapping[str, Any]],
    currencies: Mapping[str, int],
    options: ExportOptions | None = None,
) -> dict[str, bytes]:
    """Every accountant export file of closed `period` (YYYY-MM), name -> bytes, sorted by name.

    Validates first (`validate_inputs`); raises `ExportError` and builds nothing when the rows
    cannot be exported. Deterministic: the same rows give byte-identical files.
    """
    options = options or ExportOptions()
    if options.xero_max_lines < 1:
        raise ExportError(f"xero_max_lines must be >= 1, got {options.xero_max_lines}")
    data = validate_inputs(
        period, journal_lines=journal_lines, revenue_daily=revenue_daily,
        rollforward=rollforward, waterfall=waterfall, invoices=invoices,
        invoice_lines=invoice_lines, currencies=currencies,
    )
    tables = [
        *_journal_tables(data["journal_lines"], currencies, options),
        *_revenue_tables(data["revenue_daily"], currencies),
        _waterfall_table(data["waterfall"], currencies),
        _rollforward_table(data["rollforward"], currencies),
        *_invoice_tables(data["invoices"], data["invoice_lines"], currencies),
    ]
    for table in tables:
        check_columns(table.stem, table.columns)  # the allow-list; no personal data (exports/columns.py)
    files: dict[str, bytes] = {}
    rows: dict[str, int] = {}
    for table in tables:
        csv_name, xlsx_name = f"{table.stem}.csv", f"{table.stem}.xlsx"
        files[csv_name] = _csv_bytes(table)
        files[xlsx_name] = _xlsx_bytes(table, period, csv_name, currencies)
        rows[csv_name] = rows[xlsx_name] = len(table.rows)
    files["manifest.json"] = manifest_bytes(period, files, rows)
    return dict(sorted(files.items()))


def manifest_bytes(period: str, files: Mapping[str, bytes], rows: Mapping[str, int]) -> bytes:
    """Deterministic JSON listing every file: name, sha256, rows (data rows, no header; for
    XLSX the data rows of its data sheet(s)) and bytes, sorted by name."""
    manifest = {
        "period": period,
        "files": [
            {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "rows": rows[name],
             "bytes": len(data)}
            for name, data in sorted(files.items())
        ],
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
