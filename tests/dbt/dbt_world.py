"""A small hand-made raw world for the dbt project, and its hand-computed marts.

Tables are created from ingest/raw_schema.py so the raw contract stays single-sourced. Every
expected value below is computed by hand in the comments, never read back from a model.

Timeline: January 2024 is locked (issued), February and March are drafts.
Loaded metering batches end at 2024-03-03 00:00, so as_of = 2024-03-03 (a failed batch that
ends later does not count); late window = 3 days, so usage days >= 2024-02-29 are pending.

Spike protection: acc_a's `replay` usage (priced with spike_multiplier 2) spikes on 2024-02-08
and 2024-02-09; only 02-09 is released, so 02-08's excess stays held (EXPECTED_SPIKE_DAYS).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from ingest.raw_schema import BATCH_LEDGER, LEDGER_TABLES, QUARANTINE, all_raw_tables

N = None


def create_tables_sql() -> list[str]:
    """DDL for raw.* (incl. the batch ledger) and ledger.*, straight from the contract."""
    statements = ['CREATE SCHEMA IF NOT EXISTS "raw"', 'CREATE SCHEMA IF NOT EXISTS "ledger"']
    tables: list[tuple[str, str, list[tuple[str, str]]]] = [
        ("raw", name, cols) for name, cols in all_raw_tables().items()
    ]
    tables.append(("raw", "quarantine", QUARANTINE))
    tables.append(("raw", "batch_ledger", BATCH_LEDGER))
    tables += [("ledger", name, cols) for name, cols in LEDGER_TABLES.items()]
    for schema, name, cols in tables:
        body = ", ".join(f'"{col}" {sql_type}' for col, sql_type in cols)
        statements.append(f'CREATE TABLE "{schema}"."{name}" ({body})')
    return statements


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | Decimal):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def insert_sql(
    schema: str, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    values = ",\n".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    return f'INSERT INTO "{schema}"."{table}" ({cols}) VALUES\n{values}'


def _columns(schema: str, table: str) -> list[str]:
    if schema == "ledger":
        return [c for c, _ in LEDGER_TABLES[table]]
    if table == "batch_ledger":
        return [c for c, _ in BATCH_LEDGER]
    if table == "quarantine":
        return [c for c, _ in QUARANTINE]
    return [c for c, _ in all_raw_tables()[table]]


def _stamp(batch: str, extracted_at: str, source: str) -> tuple[str, str, str]:
    return (batch, extracted_at, source)


# Tabular data reads best one row per line.
# fmt: off
M_JAN = _stamp("m_jan", "2024-02-01 00:30:00", "metering")
M_0301 = _stamp("m_0301", "2024-03-02 00:30:00", "metering")
M_0302 = _stamp("m_0302", "2024-03-03 00:30:00", "metering")
BILL_1 = _stamp("bill_1", "2024-03-02 00:40:00", "billing")
BILL_2 = _stamp("bill_2", "2024-03-03 00:40:00", "billing")
S_1 = _stamp("s_1", "2024-02-02 00:50:00", "stripe")
S_2 = _stamp("s_2", "2024-02-03 00:50:00", "stripe")
S_3 = _stamp("s_3", "2024-03-02 00:50:00", "stripe")

BATCH_LEDGER_ROWS = [
    # batch_id, source, interval_start, interval_end, row_count, checksum, status, loaded_at
    # a month-wide first batch: the ingested history starts on 2024-01-01, so January is billed
    ("m_jan", "metering", "2024-01-01", "2024-02-01", 1, "x", "loaded", "2024-02-01 00:31:00"),
    ("m_0301", "metering", "2024-03-01", "2024-03-02", 14, "x", "loaded", "2024-03-02 00:31:00"),
    ("m_0302", "metering", "2024-03-02", "2024-03-03", 2, "x", "loaded", "2024-03-03 00:31:00"),
    # a failed later batch: must not move as_of
    ("m_0303", "metering", "2024-03-03", "2024-03-04", 0, "x", "failed", "2024-03-04 00:31:00"),
    ("bill_1", "billing", "2024-03-01", "2024-03-02", 0, "x", "loaded", "2024-03-02 00:41:00"),
    ("bill_2", "billing", "2024-03-02", "2024-03-03", 0, "x", "loaded", "2024-03-03 00:41:00"),
    ("s_1", "stripe", "2024-02-01", "2024-02-02", 0, "x", "loaded", "2024-02-02 00:51:00"),
    ("s_2", "stripe", "2024-02-02", "2024-02-03", 0, "x", "loaded", "2024-02-03 00:51:00"),
    ("s_3", "stripe", "2024-03-01", "2024-03-02", 0, "x", "loaded", "2024-03-02 00:51:00"),
]

# hour_start, account_id, project_id, category, outcome, quantity, updated_at
METERING_ROWS = [
    # January, acc_a error: 1500 as issued, then a late version 1700 written after the close
    ("2024-01-10 10:00:00", "acc_a", "prj1", "error", "accepted", 1500, "2024-01-31 05:00:00", *M_JAN),
    ("2024-01-10 10:00:00", "acc_a", "prj1", "error", "accepted", 1700, "2024-03-01 06:00:00", *M_0301),
    # February, acc_a error on 02-10: 800 then 900; the 900 version pulled again by m_0302
    ("2024-02-10 00:00:00", "acc_a", "prj1", "error", "accepted", 800, "2024-02-10 02:00:00", *M_0301),
    ("2024-02-10 00:00:00", "acc_a", "prj1", "error", "accepted", 900, "2024-02-11 00:00:00", *M_0301),
    ("2024-02-10 00:00:00", "acc_a", "prj1", "error", "accepted", 900, "2024-02-11 00:00:00", *M_0302),
    # 02-20: 400, plus an identical copy in the same batch -> duplicate_key
    ("2024-02-20 00:00:00", "acc_a", "prj2", "error", "accepted", 400, "2024-02-20 01:00:00", *M_0301),
    ("2024-02-20 00:00:00", "acc_a", "prj2", "error", "accepted", 400, "2024-02-20 01:00:00", *M_0301),
    ("2024-02-12 00:00:00", "acc_a", "prj1", "span", "accepted", 5000, "2024-02-12 01:00:00", *M_0301),
    ("2024-02-15 00:00:00", "acc_a", "prj1", "transaction", "accepted", 30, "2024-02-15 01:00:00", *M_0301),
    ("2024-02-15 00:00:00", "acc_a", "prj1", "transaction", "filtered", 99, "2024-02-15 01:00:00", *M_0301),
    ("2024-02-05 00:00:00", "acc_j", "pj", "error", "accepted", 250, "2024-02-05 01:00:00", *M_0301),
    # spike protection, acc_a replay (price pr_replay: spike multiplier 2, baseline 7 days):
    # a steady 100 a day from 02-01 (101 on 02-07), then 350 on 02-08 (two hours) and 400 on 02-09
    ("2024-02-01 12:00:00", "acc_a", "prj1", "replay", "accepted", 100, "2024-02-01 13:00:00", *M_0301),
    ("2024-02-02 12:00:00", "acc_a", "prj1", "replay", "accepted", 100, "2024-02-02 13:00:00", *M_0301),
    ("2024-02-03 12:00:00", "acc_a", "prj1", "replay", "accepted", 100, "2024-02-03 13:00:00", *M_0301),
    ("2024-02-04 12:00:00", "acc_a", "prj1", "replay", "accepted", 100, "2024-02-04 13:00:00", *M_0301),
    ("2024-02-05 12:00:00", "acc_a", "prj1", "replay", "accepted", 100, "2024-02-05 13:00:00", *M_0301),
    ("2024-02-06 12:00:00", "acc_a", "prj1", "replay", "accepted", 100, "2024-02-06 13:00:00", *M_0301),
    ("2024-02-07 12:00:00", "acc_a", "prj1", "replay", "accepted", 101, "2024-02-07 13:00:00", *M_0301),
    ("2024-02-08 10:00:00", "acc_a", "prj1", "replay", "accepted", 200, "2024-02-08 11:00:00", *M_0301),
    ("2024-02-08 11:00:00", "acc_a", "prj1", "replay", "accepted", 150, "2024-02-08 12:00:00", *M_0301),
    ("2024-02-09 12:00:00", "acc_a", "prj1", "replay", "accepted", 400, "2024-02-09 13:00:00", *M_0301),
    # bad input
    ("2024-02-16 00:00:00", N, "prj1", "error", "accepted", 5, "2024-02-16 01:00:00", *M_0301),
    ("2024-02-16 00:00:00", "acc_gone", "prj9", "error", "accepted", 7, "2024-02-16 01:00:00", *M_0301),
    ("2024-02-16 00:00:00", "acc_a", "prj1", "span", "accepted", -3, "2024-02-16 01:00:00", *M_0301),
    ("2024-02-16 00:00:00", "acc_a", "prj1", "bogus", "accepted", 4, "2024-02-16 01:00:00", *M_0301),
    ("2024-02-16 00:00:00", "acc_a", "prj1", "error", "weird", 6, "2024-02-16 01:00:00", *M_0301),
    # March (inside the late window)
    ("2024-03-01 10:00:00", "acc_j", "pj", "error", "accepted", 40, "2024-03-01 11:00:00", *M_0301),
    ("2024-03-02 05:00:00", "acc_a", "prj1", "error", "accepted", 10, "2024-03-02 06:00:00", *M_0302),
]

ACCOUNTS = [
    # bill_1 still knows acc_gone; bill_2 (the latest snapshot) does not
    ("acc_a", "Acme", "USD", 1, "cus_a", "2023-12-01 00:00:00", *BILL_1),
    ("acc_j", "Jupiter KK", "JPY", 1, "cus_j", "2023-12-01 00:00:00", *BILL_1),
    ("acc_gone", "Gone Ltd", "USD", 1, "cus_g", "2023-12-01 00:00:00", *BILL_1),
    ("acc_a", "Acme", "USD", 1, "cus_a", "2023-12-01 00:00:00", *BILL_2),
    ("acc_j", "Jupiter KK", "JPY", 1, "cus_j", "2023-12-01 00:00:00", *BILL_2),
]
PLANS = [
    ("p_usd", "Team", "USD", 1000, *BILL_2),
    ("p_jpy", "Team JP", "JPY", 500, *BILL_2),
]
SUBSCRIPTIONS = [
    # subscription_id, account, plan, started_at, ended_at, rounding_mode
    ("s_a", "acc_a", "p_usd", "2024-01-01 00:00:00", N, N, *BILL_2),
    # starts with February: no January invoice for acc_j
    ("s_j", "acc_j", "p_jpy", "2024-02-01 00:00:00", N, "half_even", *BILL_2),
]
# credit grants and minimum commitments, in both billing snapshots (the latest one counts)
CREDITS = [
    # credit_id, account_id, currency, amount_minor, granted_at, expires_at, reason
    # valid for January (issued without drawing it) and February; expired for March
    ("cr_a", "acc_a", "USD", 5000, "2023-12-15 09:00:00", "2024-02-15 00:00:00", "promotional", *BILL_1),
    ("cr_a", "acc_a", "USD", 5000, "2023-12-15 09:00:00", "2024-02-15 00:00:00", "promotional", *BILL_2),
    # granted in March: only the March invoice can draw it
    ("cr_j", "acc_j", "JPY", 30000, "2024-03-10 12:00:00", N, "prepaid", *BILL_2),
]
COMMITMENTS = [
    # commitment_id, account_id, currency, minimum_minor, starts_on, ends_on
    ("cm_a", "acc_a", "USD", 1020, "2024-01-01", "2025-01-01", *BILL_1),
    ("cm_a", "acc_a", "USD", 1020, "2024-01-01", "2025-01-01", *BILL_2),
]
G = "graduated"
PRICE_BOOKS = [
    # price_id, plan, category, from, to, model, included, reserved, reserved price, spend cap,
    # package size, spike multiplier, tier_start, tier_end, unit price
    ("pr_err_1", "p_usd", "error", "2024-01-01", N, G, 1000, N, N, N, N, N, 0, 500, Decimal("0.001"), *BILL_2),
    ("pr_err_2", "p_usd", "error", "2024-01-01", N, G, 1000, N, N, N, N, N, 500, N, Decimal("0.0005"), *BILL_2),
    ("pr_txn", "p_usd", "transaction", "2024-01-01", N, "per_unit", 0, N, N, N, N, N, 0, N, Decimal("0.0005"), *BILL_2),
    ("pr_jerr", "p_jpy", "error", "2024-01-01", N, G, 0, N, N, N, N, N, 0, N, Decimal("0.05"), *BILL_2),
    # replay: 1000 included, then 0.02 a unit; spike protection at 2x the trailing 7-day average
    ("pr_replay", "p_usd", "replay", "2024-01-01", N, "per_unit", 1000, N, N, N, N, Decimal("2"), 0, N, Decimal("0.02"), *BILL_2),
    # a superseded price: ended before any period of ours starts
    ("pr_old", "p_usd", "error", "2023-01-01", "2024-01-01", G, 0, N, N, N, N, N, 0, N, Decimal("9"), *BILL_2),
]
USAGE_COUNTERS = [
    ("2024-01-10", "acc_a", "error", 1500, "2024-01-31 06:00:00", *BILL_1),
    ("2024-01-10", "acc_a", "error", 1700, "2024-03-01 07:00:00", *BILL_2),
    ("2024-02-10", "acc_a", "error", 950, "2024-02-11 01:00:00", *BILL_1),
    ("2024-02-12", "acc_a", "span", 5004, "2024-02-12 02:00:00", *BILL_1),
    ("2024-02-15", "acc_a", "transaction", 30, "2024-02-16 00:00:00", *BILL_1),
    ("2024-02-15", "acc_a", "transaction", 30, "2024-02-16 00:00:00", *BILL_1),
    ("2024-02-05", "acc_j", "error", 250, "2024-02-05 02:00:00", *BILL_1),
    ("2024-02-07", "acc_j", "error", 10, "2024-02-07 02:00:00", *BILL_1),
    ("2024-03-02", "acc_a", "error", 8, "2024-03-02 07:00:00", *BILL_2),
    # no counter for acc_a error 2024-02-20 (dropped) nor acc_j error 2024-03-01
    # billing counts acc_a's replay days exactly as metering (held or not, usage is usage)
    ("2024-02-01", "acc_a", "replay", 100, "2024-02-02 00:00:00", *BILL_1),
    ("2024-02-02", "acc_a", "replay", 100, "2024-02-03 00:00:00", *BILL_1),
    ("2024-02-03", "acc_a", "replay", 100, "2024-02-04 00:00:00", *BILL_1),
    ("2024-02-04", "acc_a", "replay", 100, "2024-02-05 00:00:00", *BILL_1),
    ("2024-02-05", "acc_a", "replay", 100, "2024-02-06 00:00:00", *BILL_1),
    ("2024-02-06", "acc_a", "replay", 100, "2024-02-07 00:00:00", *BILL_1),
    ("2024-02-07", "acc_a", "replay", 101, "2024-02-08 00:00:00", *BILL_1),
    ("2024-02-08", "acc_a", "replay", 350, "2024-02-09 00:00:00", *BILL_1),
    ("2024-02-09", "acc_a", "replay", 400, "2024-02-10 00:00:00", *BILL_1),
]
# spike releases, a full snapshot each night (the latest billing batch that has rows counts):
# bill_1 released both spike days, bill_2 (the latest) keeps only 02-09: 02-08's release was
# withdrawn, so 02-08 stays held
SPIKE_RELEASES = [
    # account_id, category, day, released_at, released_by
    ("acc_a", "replay", "2024-02-08", "2024-02-12 09:00:00", "ops@example.com", *BILL_1),
    ("acc_a", "replay", "2024-02-09", "2024-02-12 09:05:00", "ops@example.com", *BILL_1),
    ("acc_a", "replay", "2024-02-09", "2024-02-12 09:05:00", "ops@example.com", *BILL_2),
]

STRIPE_CUSTOMERS = [
    ("cus_a", "acc_a", "a@example.com", "2023-12-01 00:00:00", "{}", *S_1),
    ("cus_j", "acc_j", "j@example.com", "2023-12-01 00:00:00", "{}", *S_1),
]
STRIPE_INVOICES = [
    # id, customer, account, period, currency, status, subtotal, total, amount_paid, created
    ("in_a_jan", "cus_a", "acc_a", "2024-01", "usd", "open", 1050, 1050, 0, "2024-02-01 01:00:00", "{}", *S_1),
    ("in_a_jan", "cus_a", "acc_a", "2024-01", "usd", "paid", 1050, 1050, 1050, "2024-02-01 01:00:00", "{}", *S_2),
    ("in_j_jan", "cus_j", "acc_j", "2024-01", "jpy", "open", 100, 100, 0, "2024-02-01 01:00:00", "{}", *S_1),
    ("in_g_jan_1", "cus_g", "acc_gone", "2024-01", "usd", "open", 500, 500, 0, "2024-02-01 01:00:00", "{}", *S_1),
    ("in_g_jan_2", "cus_g", "acc_gone", "2024-01", "usd", "open", 500, 500, 0, "2024-02-01 02:00:00", "{}", *S_1),
    ("in_j_feb", "cus_j", "acc_j", "2024-02", "jpy", "paid", 514, 514, 514, "2024-03-01 01:00:00", "{}", *S_3),
    # a voided invoice does not count: acc_a February stays missing in Stripe
    ("in_void", "cus_a", "acc_a", "2024-02", "usd", "void", 1032, 1032, 0, "2024-03-01 01:00:00", "{}", *S_3),
]
STRIPE_INVOICE_LINES = [
    ("il_a_base", "in_a_jan", "base_fee", 1, 1000, "usd", "{}", *S_2),
    ("il_a_err", "in_a_jan", "error", 1500, 50, "usd", "{}", *S_2),
    ("il_j_base", "in_j_feb", "base_fee", 1, 500, "jpy", "{}", *S_3),
    ("il_j_err", "in_j_feb", "error", 250, 13, "jpy", "{}", *S_3),
    ("il_j_span", "in_j_feb", "span", 1, 1, "jpy", "{}", *S_3),
]
STRIPE_CHARGES = [
    ("ch_a_jan", "cus_a", "in_a_jan", 1050, 50, "usd", "succeeded", "txn_1", "2024-02-02 10:00:00", "{}", *S_2),
    ("ch_fail", "cus_a", "in_a_jan", 1050, 0, "usd", "failed", N, "2024-02-02 09:00:00", "{}", *S_2),
    ("ch_j_feb", "cus_j", "in_j_feb", 500, 0, "jpy", "succeeded", "txn_2", "2024-03-01 10:00:00", "{}", *S_3),
    ("ch_noinv", "cus_a", "in_nowhere", 700, 0, "usd", "succeeded", "txn_3", "2024-03-01 10:00:00", "{}", *S_3),
]
STRIPE_REFUNDS = [
    ("re_1", "ch_a_jan", 50, "usd", "succeeded", "txn_4", "2024-02-02 12:00:00", "{}", *S_2),
    ("re_orphan", "ch_missing", 20, "usd", "succeeded", "txn_5", "2024-03-01 12:00:00", "{}", *S_3),
]

# Staged only (no mart reads them yet): every version as loaded, amounts integer minor units.
STRIPE_SUBSCRIPTIONS = [
    # id, customer, account, status, currency, current_period_start, current_period_end, canceled_at, created
    ("sub_a", "cus_a", "acc_a", "active", "usd", "2024-01-01 00:00:00", "2024-02-01 00:00:00", N, "2023-12-01 00:00:00", "{}", *S_1),
    # renewed on 2024-02-01: a second version of sub_a in a later batch
    ("sub_a", "cus_a", "acc_a", "active", "usd", "2024-02-01 00:00:00", "2024-03-01 00:00:00", N, "2023-12-01 00:00:00", "{}", *S_2),
    ("sub_j", "cus_j", "acc_j", "canceled", "jpy", "2024-02-01 00:00:00", "2024-03-01 00:00:00", "2024-03-01 09:00:00", "2023-12-01 00:00:00", "{}", *S_3),
]
STRIPE_DISPUTES = [
    # id, charge, amount, currency, status, reason, created
    ("dp_1", "ch_a_jan", 1000, "usd", "warning_needs_response", "general", "2024-02-02 14:00:00", "{}", *S_2),
    # closed a month later: the version carried by that night's event
    ("dp_1", "ch_a_jan", 1000, "usd", "warning_closed", "general", "2024-02-02 14:00:00", "{}", *S_3),
]
STRIPE_CREDIT_NOTES = [
    # id, invoice, customer, amount, currency, status, type, created
    ("cn_j_feb", "in_j_feb", "cus_j", 14, "jpy", "issued", "post_payment", "2024-03-01 15:00:00", "{}", *S_3),
    # beyond a 32-bit integer: money stays BIGINT minor units
    ("cn_big", "in_a_jan", "cus_a", 3000000000, "usd", "void", "pre_payment", "2024-02-02 16:00:00", "{}", *S_2),
]
STRIPE_EVENTS = [
    # id, type, object_type, object_id, created
    ("evt_1", "invoice.paid", "invoice", "in_a_jan", "2024-02-02 10:00:00", '{"id":"evt_1"}', *S_2),
    ("evt_2", "charge.dispute.closed", "dispute", "dp_1", "2024-03-01 08:00:00", '{"id":"evt_2"}', *S_3),
    ("evt_3", "customer.subscription.deleted", "subscription", "sub_j", "2024-03-01 09:00:00", '{"id":"evt_3"}', *S_3),
]

PERIOD_LOCKS = [("2024-01", "2024-02-03 00:00:00", "sha-jan")]
ISSUED_INVOICES = [("inv_acc_a_2024-01", "acc_a", "2024-01", "USD", 1050, 2, 1, "h1", N, N)]
ISSUED_INVOICE_LINES = [
    # invoice_line_id, invoice, account, period, service_period, line_key, line_type, category,
    # currency, quantity, amount_minor
    ("inv_acc_a_2024-01:s_a|base_fee|flat_fee", "inv_acc_a_2024-01", "acc_a", "2024-01", "2024-01",
     "s_a|base_fee|flat_fee", "flat_fee", "base_fee", "USD", 1, 1000),
    # 1500 errors, 1000 included, 500 billable at 0.001 = 0.50 USD
    ("inv_acc_a_2024-01:s_a|error|usage", "inv_acc_a_2024-01", "acc_a", "2024-01", "2024-01",
     "s_a|error|usage", "usage", "error", "USD", 1500, 50),
]

# fmt: on


# rows the loader quarantined at ingest (raw.quarantine): they reach fct_quarantine unchanged
INGEST_QUARANTINE = [
    # raw_table, reason, account_id, category, day, row_json, _batch_id, _extracted_at, _source
    ("billing_accounts", "invalid_currency", "acc_q", N, N,
     '{"account_id":"acc_q","currency":"XXY"}', "bill_1", "2024-03-02 00:41:00", "billing"),
]


def world_sql() -> list[str]:
    """Every statement that builds the world, in order."""
    data: list[tuple[str, str, list]] = [
        ("raw", "batch_ledger", BATCH_LEDGER_ROWS),
        ("raw", "metering_usage_hourly", METERING_ROWS),
        ("raw", "billing_accounts", ACCOUNTS),
        ("raw", "billing_plans", PLANS),
        ("raw", "billing_subscriptions", SUBSCRIPTIONS),
        ("raw", "billing_price_books", PRICE_BOOKS),
        ("raw", "billing_usage_counters", USAGE_COUNTERS),
        ("raw", "billing_credits", CREDITS),
        ("raw", "billing_commitments", COMMITMENTS),
        ("raw", "billing_spike_releases", SPIKE_RELEASES),
        ("raw", "quarantine", INGEST_QUARANTINE),
        ("raw", "stripe_customers", STRIPE_CUSTOMERS),
        ("raw", "stripe_invoices", STRIPE_INVOICES),
        ("raw", "stripe_invoice_lines", STRIPE_INVOICE_LINES),
        ("raw", "stripe_charges", STRIPE_CHARGES),
        ("raw", "stripe_refunds", STRIPE_REFUNDS),
        ("raw", "stripe_subscriptions", STRIPE_SUBSCRIPTIONS),
        ("raw", "stripe_disputes", STRIPE_DISPUTES),
        ("raw", "stripe_credit_notes", STRIPE_CREDIT_NOTES),
        ("raw", "stripe_events", STRIPE_EVENTS),
        ("ledger", "period_locks", PERIOD_LOCKS),
        ("ledger", "issued_invoices", ISSUED_INVOICES),
        ("ledger", "issued_invoice_lines", ISSUED_INVOICE_LINES),
    ]
    statements = create_tables_sql()
    for schema, table, rows in data:
        statements.append(insert_sql(schema, table, _columns(schema, table), rows))
    return statements


# ---------------------------------------------------------------------------------------------
# Expected marts, computed by hand.
# ---------------------------------------------------------------------------------------------
# fmt: off

D = Decimal

# account, category, period, metered, included, billable, amount_decimal, amount_minor, is_priced
EXPECTED_BILLABLE_USAGE = {
    # 1700 - 1000 = 700 billable: 500 * 0.001 + 200 * 0.0005 = 0.6 USD -> 60
    ("acc_a", "error", "2024-01"): (1700, 1000, 700, D("0.6"), 60, True),
    # 900 (latest of 02-10) + 400 (02-20; its copy quarantined) = 1300; 300 * 0.001 = 0.3 -> 30
    ("acc_a", "error", "2024-02"): (1300, 1000, 300, D("0.3"), 30, True),
    # span has no price row on p_usd: kept, unpriced, nothing billed
    ("acc_a", "span", "2024-02"): (5000, 0, 0, D("0"), 0, False),
    # 30 * 0.0005 = 0.015 USD = 1.5 cents -> half-even -> 2
    ("acc_a", "transaction", "2024-02"): (30, 0, 30, D("0.015"), 2, True),
    # replay: metered 6 * 100 + 101 + 350 + 400 = 1451; held 150 (02-08, see EXPECTED_SPIKE_DAYS);
    # on-demand = 1451 - 150 - 1000 included = 301; 301 * 0.02 = 6.02 USD -> 602
    ("acc_a", "replay", "2024-02"): (1451, 1000, 301, D("6.02"), 602, True),
    # 10 < 1000 included: zero billable
    ("acc_a", "error", "2024-03"): (10, 1000, 0, D("0"), 0, True),
    # 250 * 0.05 = 12.5 JPY -> half-even -> 12
    ("acc_j", "error", "2024-02"): (250, 0, 250, D("12.5"), 12, True),
    # 40 * 0.05 = 2 JPY
    ("acc_j", "error", "2024-03"): (40, 0, 40, D("2"), 2, True),
}

# (account, category, period): (spike_quantity, held_quantity); every other row has (0, 0)
EXPECTED_SPIKE_HELD = {
    # spike 150 (02-08) + 129 (02-09); held: only 02-08's 150, 02-09 is released
    ("acc_a", "replay", "2024-02"): (279, 150),
}

# intermediate.int_usage_days for acc_a replay, day: (quantity, baseline_sum, allowed_quantity,
# spike_quantity, is_released, held_quantity). baseline_sum = the 7 days before (missing = 0);
# a full baseline needs the series to exist 7 days before the day (first day 02-01), so 02-08
# is the first day spike protection applies; allowed = floor(2 * baseline_sum / 7).
EXPECTED_SPIKE_DAYS = {
    date(2024, 2, 1): (100, 0, None, 0, False, 0),
    date(2024, 2, 2): (100, 100, None, 0, False, 0),
    date(2024, 2, 3): (100, 200, None, 0, False, 0),
    date(2024, 2, 4): (100, 300, None, 0, False, 0),
    date(2024, 2, 5): (100, 400, None, 0, False, 0),
    date(2024, 2, 6): (100, 500, None, 0, False, 0),
    # 02-07 - 7 days = 01-31 is before the series began: no full baseline yet
    date(2024, 2, 7): (101, 600, None, 0, False, 0),
    # baseline 02-01..02-07 = 6 * 100 + 101 = 701; allowed floor(1402 / 7) = 200 (1400 + 2);
    # 350 - 200 = 150 held (its release was withdrawn in bill_2)
    date(2024, 2, 8): (350, 701, 200, 150, False, 150),
    # baseline 02-02..02-08 = 5 * 100 + 101 + 350 = 951; allowed floor(1902 / 7) = 271
    # (1897 + 5); 400 - 271 = 129 over, released: billed, nothing held
    date(2024, 2, 9): (400, 951, 271, 129, True, 0),
}

# invoice_line_id: (account, period, category, currency, quantity, amount_minor, locked, state)
EXPECTED_INVOICE_LINES = {
    # January is issued: its lines as issued (1500 / 50), never recomputed
    "inv_acc_a_2024-01:s_a|base_fee|flat_fee": ("acc_a", "2024-01", "base_fee", "USD", 1, 1000, True, "issued"),
    "inv_acc_a_2024-01:s_a|error|usage": ("acc_a", "2024-01", "error", "USD", 1500, 50, True, "issued"),
    "inv_acc_a_2024-02:s_a|base_fee|flat_fee": ("acc_a", "2024-02", "base_fee", "USD", 1, 1000, False, "draft"),
    "inv_acc_a_2024-02:s_a|error|usage": ("acc_a", "2024-02", "error", "USD", 1300, 30, False, "draft"),
    "inv_acc_a_2024-02:s_a|span|usage": ("acc_a", "2024-02", "span", "USD", 5000, 0, False, "draft"),
    "inv_acc_a_2024-02:s_a|transaction|usage": ("acc_a", "2024-02", "transaction", "USD", 30, 2, False, "draft"),
    # the usage line shows metered units (1451, held ones included); it bills the 301 on-demand
    "inv_acc_a_2024-02:s_a|replay|usage": ("acc_a", "2024-02", "replay", "USD", 1451, 602, False, "draft"),
    # January's late 200 errors: now 1700 / 60 against 1500 / 50 issued -> +200 units, +10 cents
    "inv_acc_a_2024-02:adjustment|2024-01|s_a|error|usage": ("acc_a", "2024-02", "error", "USD", 200, 10, False, "draft"),
    # cr_a (5000, valid until 02-15) covers all of February: 1000 + 30 + 0 + 2 + 602 + 10 = 1644
    "inv_acc_a_2024-02:credit|cr_a": ("acc_a", "2024-02", "credit", "USD", 1, -1644, False, "draft"),
    "inv_acc_a_2024-03:s_a|base_fee|flat_fee": ("acc_a", "2024-03", "base_fee", "USD", 1, 1000, False, "draft"),
    "inv_acc_a_2024-03:s_a|error|usage": ("acc_a", "2024-03", "error", "USD", 10, 0, False, "draft"),
    # March charges 1000 < minimum 1020 (January 1060 and February 1634 reach it)
    "inv_acc_a_2024-03:commitment": ("acc_a", "2024-03", "commitment", "USD", 1, 20, False, "draft"),
    "inv_acc_j_2024-02:s_j|base_fee|flat_fee": ("acc_j", "2024-02", "base_fee", "JPY", 1, 500, False, "draft"),
    "inv_acc_j_2024-02:s_j|error|usage": ("acc_j", "2024-02", "error", "JPY", 250, 12, False, "draft"),
    "inv_acc_j_2024-03:s_j|base_fee|flat_fee": ("acc_j", "2024-03", "base_fee", "JPY", 1, 500, False, "draft"),
    "inv_acc_j_2024-03:s_j|error|usage": ("acc_j", "2024-03", "error", "JPY", 40, 2, False, "draft"),
    # cr_j (granted 03-10) covers March: 500 + 2
    "inv_acc_j_2024-03:credit|cr_j": ("acc_j", "2024-03", "credit", "JPY", 1, -502, False, "draft"),
}

# invoice_id: (account, period, currency, total_minor, line_count, state, period_start, period_end)
EXPECTED_INVOICES = {
    "inv_acc_a_2024-01": ("acc_a", "2024-01", "USD", 1050, 2, "issued", date(2024, 1, 1), date(2024, 2, 1)),
    "inv_acc_a_2024-02": ("acc_a", "2024-02", "USD", 0, 7, "draft", date(2024, 2, 1), date(2024, 3, 1)),
    "inv_acc_a_2024-03": ("acc_a", "2024-03", "USD", 1020, 3, "draft", date(2024, 3, 1), date(2024, 4, 1)),
    "inv_acc_j_2024-02": ("acc_j", "2024-02", "JPY", 512, 2, "draft", date(2024, 2, 1), date(2024, 3, 1)),
    "inv_acc_j_2024-03": ("acc_j", "2024-03", "JPY", 0, 3, "draft", date(2024, 3, 1), date(2024, 4, 1)),
}

# (reason, account_id, category, day, quantity, _batch_id)
EXPECTED_QUARANTINE = sorted(
    [
        ("duplicate_key", "acc_a", "error", date(2024, 2, 20), 400, "m_0301"),
        ("missing_account", None, "error", date(2024, 2, 16), 5, "m_0301"),
        ("unknown_account", "acc_gone", "error", date(2024, 2, 16), 7, "m_0301"),
        ("negative_quantity", "acc_a", "span", date(2024, 2, 16), -3, "m_0301"),
        ("unknown_category", "acc_a", "bogus", date(2024, 2, 16), 4, "m_0301"),
        ("unknown_outcome", "acc_a", "error", date(2024, 2, 16), 6, "m_0301"),
        ("invalid_currency", "acc_q", None, None, None, "bill_1"),
    ],
    key=lambda r: r[0],
)

# (account, category, day): (metering, billing, rows_at_latest, abs_diff, status)
EXPECTED_USAGE_DAILY = {
    ("acc_a", "error", date(2024, 1, 10)): (1700, 1700, 1, 0, "matched"),
    ("acc_a", "error", date(2024, 2, 10)): (900, 950, 1, 50, "drift"),
    # |5000 - 5004| = 4 <= 0.001 * 5004
    ("acc_a", "span", date(2024, 2, 12)): (5000, 5004, 1, 4, "within_tolerance"),
    ("acc_a", "transaction", date(2024, 2, 15)): (30, 30, 2, 0, "duplicate_in_billing"),
    ("acc_a", "replay", date(2024, 2, 1)): (100, 100, 1, 0, "matched"),
    ("acc_a", "replay", date(2024, 2, 2)): (100, 100, 1, 0, "matched"),
    ("acc_a", "replay", date(2024, 2, 3)): (100, 100, 1, 0, "matched"),
    ("acc_a", "replay", date(2024, 2, 4)): (100, 100, 1, 0, "matched"),
    ("acc_a", "replay", date(2024, 2, 5)): (100, 100, 1, 0, "matched"),
    ("acc_a", "replay", date(2024, 2, 6)): (100, 100, 1, 0, "matched"),
    ("acc_a", "replay", date(2024, 2, 7)): (101, 101, 1, 0, "matched"),
    ("acc_a", "replay", date(2024, 2, 8)): (350, 350, 1, 0, "matched"),
    ("acc_a", "replay", date(2024, 2, 9)): (400, 400, 1, 0, "matched"),
    ("acc_a", "error", date(2024, 2, 20)): (400, None, None, 400, "missing_in_billing"),
    ("acc_j", "error", date(2024, 2, 5)): (250, 250, 1, 0, "matched"),
    ("acc_j", "error", date(2024, 2, 7)): (None, 10, 1, 10, "missing_in_metering"),
    # as_of 2024-03-03 - 3 days = 2024-02-29: these two are still settling
    ("acc_j", "error", date(2024, 3, 1)): (40, None, None, 40, "late_pending"),
    ("acc_a", "error", date(2024, 3, 2)): (10, 8, 1, 2, "late_pending"),
}

# (account, period): (computed_total, stripe_total, stripe_count, status)
EXPECTED_INVOICE_TOTALS = {
    # issued 1050 (not the restated 1060) against Stripe's 1050
    ("acc_a", "2024-01"): (1050, 1050, 1, "matched"),
    # only a void invoice in Stripe; as_of 03-03 is not before 03-01 + 2 days
    ("acc_a", "2024-02"): (0, None, 0, "missing_in_stripe"),
    ("acc_j", "2024-02"): (512, 514, 1, "drift"),
    ("acc_j", "2024-01"): (None, 100, 1, "missing_in_computed"),
    ("acc_gone", "2024-01"): (None, 1000, 2, "duplicate_in_stripe"),
}

# (account, period, category): (computed_qty, stripe_qty, computed_amount, stripe_amount, status)
EXPECTED_INVOICE_LINES_REC = {
    ("acc_a", "2024-01", "base_fee"): (1, 1, 1000, 1000, "matched"),
    ("acc_a", "2024-01", "error"): (1500, 1500, 50, 50, "matched"),
    ("acc_j", "2024-02", "base_fee"): (1, 1, 500, 500, "matched"),
    ("acc_j", "2024-02", "error"): (250, 250, 12, 13, "drift"),
    ("acc_j", "2024-02", "span"): (None, 1, None, 1, "missing_in_computed"),
}

# object_id: (object_type, related_object_id, status)
EXPECTED_PAYMENTS = {
    "re_1": ("refund", "ch_a_jan", "matched"),
    "re_orphan": ("refund", "ch_missing", "missing_in_stripe"),
    # matches the LATEST version of in_a_jan (amount_paid 1050, not 0)
    "ch_a_jan": ("charge", "in_a_jan", "matched"),
    "ch_j_feb": ("charge", "in_j_feb", "drift"),
    "ch_noinv": ("charge", "in_nowhere", "missing_in_stripe"),
}

# (account, period, category): (issued_qty, current_qty, issued_amount, current_amount, status)
EXPECTED_ISSUED_VS_CURRENT = {
    ("acc_a", "2024-01", "base_fee"): (1, 1, 1000, 1000, "matched"),
    ("acc_a", "2024-01", "error"): (1500, 1700, 50, 60, "drift"),
}

# check_name, status, account_id, category, period, day, object_id, reason
EXPECTED_FINDINGS = sorted(
    [
        ("usage_daily", "drift", "acc_a", "error", None, "2024-02-10", None, None),
        ("usage_daily", "missing_in_billing", "acc_a", "error", None, "2024-02-20", None, None),
        ("usage_daily", "duplicate_in_billing", "acc_a", "transaction", None, "2024-02-15", None, None),
        ("usage_daily", "missing_in_metering", "acc_j", "error", None, "2024-02-07", None, None),
        ("invoice_totals", "missing_in_stripe", "acc_a", None, "2024-02", None, None, None),
        ("invoice_totals", "drift", "acc_j", None, "2024-02", None, None, None),
        ("invoice_totals", "missing_in_computed", "acc_j", None, "2024-01", None, None, None),
        ("invoice_totals", "duplicate_in_stripe", "acc_gone", None, "2024-01", None, None, None),
        ("invoice_lines", "drift", "acc_j", "error", "2024-02", None, None, None),
        ("invoice_lines", "missing_in_computed", "acc_j", "span", "2024-02", None, None, None),
        ("payments", "missing_in_stripe", None, None, None, None, "re_orphan", None),
        ("payments", "drift", None, None, None, None, "ch_j_feb", None),
        ("payments", "missing_in_stripe", None, None, None, None, "ch_noinv", None),
        ("issued_vs_current", "drift", "acc_a", "error", "2024-01", None, None, None),
        ("quarantine", "quarantined", "acc_a", "error", None, "2024-02-20", None, "duplicate_key"),
        ("quarantine", "quarantined", None, "error", None, "2024-02-16", None, "missing_account"),
        ("quarantine", "quarantined", "acc_gone", "error", None, "2024-02-16", None, "unknown_account"),
        ("quarantine", "quarantined", "acc_a", "span", None, "2024-02-16", None, "negative_quantity"),
        ("quarantine", "quarantined", "acc_a", "bogus", None, "2024-02-16", None, "unknown_category"),
        ("quarantine", "quarantined", "acc_a", "error", None, "2024-02-16", None, "unknown_outcome"),
        ("quarantine", "quarantined", "acc_q", None, None, None, None, "invalid_currency"),
    ],
    key=repr,
)

EXPECTED_FINDING_DETAILS = {
    ("usage_daily", "acc_a", "transaction", "2024-02-15"): (
        "metering=30 billing=30 diff=0 billing_rows_at_latest=2"
    ),
    ("usage_daily", "acc_a", "error", "2024-02-10"): "metering=900 billing=950 diff=50",
    ("quarantine", "acc_q", None, None): (
        'batch=bill_1 table=billing_accounts row={"account_id":"acc_q","currency":"XXY"}'
    ),
}

# ---------------------------------------------------------------------------------------------
# `meterline void` on the world (test_dbt_build.py::test_void_*): build, void acc_a's issued
# January invoice, build again. In this variant January drew 1050 of cr_a when it was issued
# (total 0), so the void has a credit draw to give back.
# ---------------------------------------------------------------------------------------------
VOID_INVOICE = "inv_acc_a_2024-01"
VOID_REASON = "January billed on a superseded usage export; customer disputed it"
# the ledger's data time: the end of the latest loaded metering interval (m_0302), not the
# failed m_0303
VOID_AT = "2024-03-03 00:00:00"
JAN_CREDIT_LINE = ("inv_acc_a_2024-01:credit|cr_a", "inv_acc_a_2024-01", "acc_a", "2024-01", "2024-01",
                   "credit|cr_a", "credit", "credit", "USD", 1, -1050)


def void_variant_sql() -> list[str]:
    return [
        *world_sql(),
        """UPDATE "ledger"."issued_invoices" SET "total_minor" = 0, "line_count" = 3 """
        """WHERE "invoice_id" = 'inv_acc_a_2024-01'""",
        insert_sql("ledger", "issued_invoice_lines", _columns("ledger", "issued_invoice_lines"), [JAN_CREDIT_LINE]),
    ]


_UNCHANGED_BY_VOID = {
    k: v for k, v in EXPECTED_INVOICE_LINES.items()
    if not k.startswith(("inv_acc_a_2024-01:", "inv_acc_a_2024-02:adjustment", "inv_acc_a_2024-02:credit"))
}

# before the void: the base world's lines, plus January's credit line (issued)
EXPECTED_VOID_VARIANT_LINES_BEFORE = {
    **_UNCHANGED_BY_VOID,
    "inv_acc_a_2024-01:s_a|base_fee|flat_fee": ("acc_a", "2024-01", "base_fee", "USD", 1, 1000, True, "issued"),
    "inv_acc_a_2024-01:s_a|error|usage": ("acc_a", "2024-01", "error", "USD", 1500, 50, True, "issued"),
    "inv_acc_a_2024-01:credit|cr_a": ("acc_a", "2024-01", "credit", "USD", 1, -1050, True, "issued"),
    # as in the base world: 1700 / 60 now against 1500 / 50 issued
    "inv_acc_a_2024-02:adjustment|2024-01|s_a|error|usage": ("acc_a", "2024-02", "error", "USD", 200, 10, False, "draft"),
    # cr_a has 5000 - 1050 = 3950 left; February needs 1000 + 30 + 0 + 2 + 602 + 10 = 1644
    "inv_acc_a_2024-02:credit|cr_a": ("acc_a", "2024-02", "credit", "USD", 1, -1644, False, "draft"),
}
EXPECTED_VOID_VARIANT_LINES_AFTER = {
    **_UNCHANGED_BY_VOID,
    # the voided invoice stays as issued, every line now 'void'
    "inv_acc_a_2024-01:s_a|base_fee|flat_fee": ("acc_a", "2024-01", "base_fee", "USD", 1, 1000, True, "void"),
    "inv_acc_a_2024-01:s_a|error|usage": ("acc_a", "2024-01", "error", "USD", 1500, 50, True, "void"),
    "inv_acc_a_2024-01:credit|cr_a": ("acc_a", "2024-01", "credit", "USD", 1, -1050, True, "void"),
    # nothing of January counts as billed any more: January as computed now lands on February
    # whole, as `unbilled` adjustments - the base fee (1 / 1000) and the 1700 errors
    # (700 over the 1000 included: 500 * 0.001 + 200 * 0.0005 = 0.60 USD -> 60); January's
    # commitment is met (1060 >= 1020), so no true-up line
    "inv_acc_a_2024-02:adjustment|2024-01|s_a|base_fee|flat_fee": ("acc_a", "2024-02", "base_fee", "USD", 1, 1000, False, "draft"),
    "inv_acc_a_2024-02:adjustment|2024-01|s_a|error|usage": ("acc_a", "2024-02", "error", "USD", 1700, 60, False, "draft"),
    # the void gave January's 1050 back: cr_a holds 5000 again; February needs
    # 1000 + 30 + 0 + 2 + 602 + 1000 + 60 = 2694 <= 5000 and draws all of it
    "inv_acc_a_2024-02:credit|cr_a": ("acc_a", "2024-02", "credit", "USD", 1, -2694, False, "draft"),
}

# invoice_id: (total_minor, line_count, state); the others as in EXPECTED_INVOICES
EXPECTED_VOID_VARIANT_INVOICES_BEFORE = {
    "inv_acc_a_2024-01": (0, 3, "issued"),   # 1000 + 50 - 1050
    "inv_acc_a_2024-02": (0, 7, "draft"),
}
EXPECTED_VOID_VARIANT_INVOICES_AFTER = {
    "inv_acc_a_2024-01": (0, 3, "void"),
    "inv_acc_a_2024-02": (0, 8, "draft"),    # 2694 - 2694
}

# intermediate.int_invoice_adjustments, (account, service_period, line_key):
# (target_period, category, quantity, amount_minor, adjustment_reason)
EXPECTED_VOID_ADJUSTMENTS_BEFORE = {
    ("acc_a", "2024-01", "s_a|error|usage"): ("2024-02", "error", 200, 10, "usage_restated"),
}
EXPECTED_VOID_ADJUSTMENTS_AFTER = {
    ("acc_a", "2024-01", "s_a|base_fee|flat_fee"): ("2024-02", "base_fee", 1, 1000, "unbilled"),
    ("acc_a", "2024-01", "s_a|error|usage"): ("2024-02", "error", 1700, 60, "unbilled"),
}

# intermediate.int_credit_drawdowns, (credit_id, period): (balance_before, drawn, balance_after).
# Draft periods are February and March; cr_a expires 02-15 (nothing in March), cr_j is granted
# 03-10 (nothing in February).
EXPECTED_VOID_DRAWDOWNS_BEFORE = {
    ("cr_a", "2024-02"): (3950, 1644, 2306),
    ("cr_a", "2024-03"): (2306, 0, 2306),
    ("cr_j", "2024-02"): (30000, 0, 30000),
    ("cr_j", "2024-03"): (30000, 502, 29498),
}
EXPECTED_VOID_DRAWDOWNS_AFTER = {
    # the 1050 January drew is back: 5000 - 2694 = 2306
    ("cr_a", "2024-02"): (5000, 2694, 2306),
    ("cr_a", "2024-03"): (2306, 0, 2306),
    ("cr_j", "2024-02"): (30000, 0, 30000),
    ("cr_j", "2024-03"): (30000, 502, 29498),
}

# account_id: (currency, anchor, stripe_customer_id, current_plan_id)
EXPECTED_ACCOUNTS = {
    "acc_a": ("USD", 1, "cus_a", "p_usd"),
    "acc_j": ("JPY", 1, "cus_j", "p_jpy"),
}
EXPECTED_PRICE_IDS = ["pr_err_1", "pr_err_2", "pr_jerr", "pr_old", "pr_replay", "pr_txn"]

# Stripe staging: renamed, currency upper-cased, amounts as loaded (integer minor units).
# (subscription_id, status, currency, current_period_start_at, current_period_end_at, canceled_at, _batch_id)
EXPECTED_STG_STRIPE_SUBSCRIPTIONS = sorted([
    ("sub_a", "active", "USD", "2024-01-01 00:00:00", "2024-02-01 00:00:00", N, "s_1"),
    ("sub_a", "active", "USD", "2024-02-01 00:00:00", "2024-03-01 00:00:00", N, "s_2"),
    ("sub_j", "canceled", "JPY", "2024-02-01 00:00:00", "2024-03-01 00:00:00", "2024-03-01 09:00:00", "s_3"),
])
# (dispute_id, charge_id, amount_minor, currency, dispute_status, dispute_reason, _batch_id)
EXPECTED_STG_STRIPE_DISPUTES = sorted([
    ("dp_1", "ch_a_jan", 1000, "USD", "warning_needs_response", "general", "s_2"),
    ("dp_1", "ch_a_jan", 1000, "USD", "warning_closed", "general", "s_3"),
])
# (credit_note_id, invoice_id, amount_minor, currency, credit_note_status, credit_note_type, _batch_id)
EXPECTED_STG_STRIPE_CREDIT_NOTES = sorted([
    ("cn_big", "in_a_jan", 3000000000, "USD", "void", "pre_payment", "s_2"),
    ("cn_j_feb", "in_j_feb", 14, "JPY", "issued", "post_payment", "s_3"),
])
# (event_id, event_type, object_type, object_id, created_at, _batch_id)
EXPECTED_STG_STRIPE_EVENTS = sorted([
    ("evt_1", "invoice.paid", "invoice", "in_a_jan", "2024-02-02 10:00:00", "s_2"),
    ("evt_2", "charge.dispute.closed", "dispute", "dp_1", "2024-03-01 08:00:00", "s_3"),
    ("evt_3", "customer.subscription.deleted", "subscription", "sub_j", "2024-03-01 09:00:00", "s_3"),
])
# latest version per id: the dispute closed in s_3
EXPECTED_INT_STRIPE_DISPUTES_LATEST = [("dp_1", "warning_closed", "s_3")]
EXPECTED_INT_STRIPE_CREDIT_NOTES_LATEST = [("cn_big", "void", "s_2"), ("cn_j_feb", "issued", "s_3")]
# fmt: on


# ---- the checks of issue 6 on this world (rec_findings rows, as for EXPECTED_FINDINGS) ----------

# balance_transactions: the world holds no balance transaction at all, so every succeeded charge
# (ch_a_jan, ch_j_feb, ch_noinv; ch_fail failed) and refund (re_1, re_orphan) misses its own.
# re_orphan's charge does not exist, so it has no account.
EXPECTED_BALANCE_FINDINGS = sorted(
    [
        ("balance_transactions", "missing_in_stripe", "acc_a", None, None, None, "ch_a_jan", None),
        ("balance_transactions", "missing_in_stripe", "acc_a", None, None, None, "ch_noinv", None),
        ("balance_transactions", "missing_in_stripe", "acc_a", None, None, None, "re_1", None),
        ("balance_transactions", "missing_in_stripe", "acc_j", None, None, None, "ch_j_feb", None),
        ("balance_transactions", "missing_in_stripe", None, None, None, None, "re_orphan", None),
    ],
    key=repr,
)


def expected_completeness_findings(as_of: str = "2024-03-03", days: int = 35) -> list[tuple]:
    """completeness: the hours of [max(history start 2024-01-01, as_of - 35 days), as_of) that no
    loaded batch of a source covers (BATCH_LEDGER_ROWS), one finding per source and day."""
    from datetime import datetime, timedelta

    end = datetime.fromisoformat(as_of)
    start = max(datetime(2024, 1, 1), end - timedelta(days=days))
    loaded = [(src, datetime.fromisoformat(a), datetime.fromisoformat(b))
              for _, src, a, b, _, _, status, _ in BATCH_LEDGER_ROWS if status == "loaded"]
    out = set()
    for source in ("metering", "billing", "stripe"):
        hour = start
        while hour < end:
            if not any(s == source and a <= hour < b for s, a, b in loaded):
                out.add(("completeness", f"missing_in_{source}", None, None, None, hour.date().isoformat(),
                         source, None))
            hour += timedelta(hours=1)
    return sorted(out, key=repr)
