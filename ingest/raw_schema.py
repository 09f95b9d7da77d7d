"""Column contracts of the raw tables (see docs/sources.md).

One place names every raw table, its columns and their SQL types; the loader creates the
tables from it on DuckDB and PostgreSQL alike, and dbt's sources mirror it.
"""

from __future__ import annotations

from meterline import ledger
from meterline.source_contract import BILLING_TABLES, METERING_TABLES

BATCH_COLUMNS: list[tuple[str, str]] = [
    ("_batch_id", "VARCHAR"),
    ("_extracted_at", "TIMESTAMP"),
    ("_source", "VARCHAR"),
]


RAW_TABLES: dict[str, list[tuple[str, str]]] = {
    # metering store and billing database: the source contract's columns, as they are
    "metering_usage_hourly": METERING_TABLES["usage_hourly"],
    **{f"billing_{name}": cols for name, cols in BILLING_TABLES.items()},
    # Stripe: typed columns plus the full object
    "stripe_customers": [
        ("id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("email", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_invoices": [
        ("id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("period", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("status", "VARCHAR"),
        ("subtotal", "BIGINT"),
        ("total", "BIGINT"),
        ("amount_paid", "BIGINT"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_invoice_lines": [
        ("id", "VARCHAR"),
        ("invoice_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("quantity", "BIGINT"),
        ("amount", "BIGINT"),
        ("currency", "VARCHAR"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_charges": [
        ("id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("invoice_id", "VARCHAR"),
        ("amount", "BIGINT"),
        ("amount_refunded", "BIGINT"),
        ("currency", "VARCHAR"),
        ("status", "VARCHAR"),
        ("balance_transaction_id", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_refunds": [
        ("id", "VARCHAR"),
        ("charge_id", "VARCHAR"),
        ("amount", "BIGINT"),
        ("currency", "VARCHAR"),
        ("status", "VARCHAR"),
        ("balance_transaction_id", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_balance_transactions": [
        ("id", "VARCHAR"),
        ("type", "VARCHAR"),
        ("source_id", "VARCHAR"),
        ("amount", "BIGINT"),
        ("fee", "BIGINT"),
        ("net", "BIGINT"),
        ("currency", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_payouts": [
        ("id", "VARCHAR"),
        ("amount", "BIGINT"),
        ("currency", "VARCHAR"),
        ("status", "VARCHAR"),
        ("arrival_date", "TIMESTAMP"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_subscriptions": [
        ("id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("status", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("current_period_start", "TIMESTAMP"),
        ("current_period_end", "TIMESTAMP"),
        ("canceled_at", "TIMESTAMP"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_disputes": [
        ("id", "VARCHAR"),
        ("charge_id", "VARCHAR"),
        ("amount", "BIGINT"),
        ("currency", "VARCHAR"),
        ("status", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    "stripe_credit_notes": [
        ("id", "VARCHAR"),
        ("invoice_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("amount", "BIGINT"),
        ("currency", "VARCHAR"),
        ("status", "VARCHAR"),
        ("type", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    # Stripe Events API: every event of a pulled night whose object meterline keeps
    "stripe_events": [
        ("id", "VARCHAR"),
        ("type", "VARCHAR"),
        ("object_type", "VARCHAR"),
        ("object_id", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("object_json", "VARCHAR"),
    ],
    # Stripe pull cursor: one row per resource (and `events`) per Stripe batch, written in the
    # batch's own transaction: what interval was listed, how many objects, the newest seen.
    "stripe_cursor": [
        ("resource", "VARCHAR"),
        ("mode", "VARCHAR"),
        ("interval_start", "TIMESTAMP"),
        ("interval_end", "TIMESTAMP"),
        ("objects", "BIGINT"),
        ("newest_created_at", "TIMESTAMP"),
        ("newest_id", "VARCHAR"),
    ],
}

# Rows that broke a row-level contract at ingest (ingest/contracts.py), batch-stamped like raw.
QUARANTINE: list[tuple[str, str]] = [
    ("raw_table", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("account_id", "VARCHAR"),
    ("category", "VARCHAR"),
    ("day", "DATE"),
    ("row_json", "VARCHAR"),
    *BATCH_COLUMNS,
]

BATCH_LEDGER: list[tuple[str, str]] = [
    ("batch_id", "VARCHAR"),
    ("source", "VARCHAR"),
    ("interval_start", "TIMESTAMP"),
    ("interval_end", "TIMESTAMP"),
    ("row_count", "BIGINT"),
    ("checksum", "VARCHAR"),
    ("status", "VARCHAR"),
    ("loaded_at", "TIMESTAMP"),
]

# Tables meterline itself keeps (schema `ledger`): meterline/ledger.py, shared by every stage
LEDGER_TABLES = ledger.LEDGER_TABLES


def all_raw_tables() -> dict[str, list[tuple[str, str]]]:
    """Every raw table with the batch columns appended."""
    return {name: cols + BATCH_COLUMNS for name, cols in RAW_TABLES.items()}
