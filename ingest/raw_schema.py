"""Column contracts of the raw tables (see docs/sources.md).

One place names every raw table, its columns and their SQL types; the loader creates the
tables from it on DuckDB and PostgreSQL alike, and dbt's sources mirror it.
"""

from __future__ import annotations

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

# Tables meterline itself keeps (schema `ledger`): period locks and issued invoices.
LEDGER_TABLES: dict[str, list[tuple[str, str]]] = {
    "period_locks": [
        ("period", "VARCHAR"),
        ("locked_at_interval", "TIMESTAMP"),
        ("exports_manifest_sha256", "VARCHAR"),
    ],
    "issued_invoices": [
        ("invoice_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("period", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("total_minor", "BIGINT"),
        ("line_count", "BIGINT"),
        ("version", "BIGINT"),
        ("content_hash", "VARCHAR"),
        # set when the issued invoice is voided (meterline void); its lines then count as unbilled
        ("voided_at", "TIMESTAMP"),
        ("void_reason", "VARCHAR"),
    ],
    "issued_invoice_lines": [
        ("invoice_line_id", "VARCHAR"),
        ("invoice_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("period", "VARCHAR"),
        # the service period the line bills (differs from `period` on true-up lines)
        ("service_period", "VARCHAR"),
        ("line_key", "VARCHAR"),
        ("line_type", "VARCHAR"),
        ("category", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("quantity", "BIGINT"),
        ("amount_minor", "BIGINT"),
    ],
    # every distinct content of a draft invoice seen by a nightly: its version history
    "invoice_versions": [
        ("invoice_id", "VARCHAR"),
        ("version", "BIGINT"),
        ("content_hash", "VARCHAR"),
        ("total_minor", "BIGINT"),
        ("as_of", "TIMESTAMP"),
    ],
    # a locked accounting period's journal and revenue, as they were when it was closed: what
    # its exports show for ever. dbt books any later difference as a catch-up in an open period.
    "locked_journal_lines": [
        ("journal_line_id", "VARCHAR"),
        ("entry_id", "VARCHAR"),
        ("entry_date", "DATE"),
        ("accounting_period", "VARCHAR"),
        ("entry_type", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("gl_key", "VARCHAR"),
        ("gl_account", "VARCHAR"),
        ("gl_account_name", "VARCHAR"),
        ("gl_account_type", "VARCHAR"),
        ("product", "VARCHAR"),
        ("amount_minor", "BIGINT"),
        ("memo", "VARCHAR"),
        ("is_catchup", "BOOLEAN"),
        ("service_period", "VARCHAR"),
        ("reference", "VARCHAR"),
    ],
    "locked_revenue_daily": [
        ("account_id", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("product", "VARCHAR"),
        ("revenue_date", "DATE"),
        ("accounting_period", "VARCHAR"),
        ("service_period", "VARCHAR"),
        ("revenue_source", "VARCHAR"),
        ("revenue_minor", "BIGINT"),
        ("is_catchup", "BOOLEAN"),
    ],
    # every close and reopen of a period: who asked, why, and what the exports were
    "period_audit": [
        ("seq", "BIGINT"),
        ("period", "VARCHAR"),
        ("action", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("requested_by", "VARCHAR"),
        ("as_of", "TIMESTAMP"),
        ("exports_manifest_sha256", "VARCHAR"),
    ],
    # the history of every check's result: one row per night (as_of) and check; a rerun of the
    # night replaces its rows. outcome: passed | failed | error (an error is neither)
    "recon_check_results": [
        ("as_of", "TIMESTAMP"),
        ("check_name", "VARCHAR"),
        ("outcome", "VARCHAR"),
        ("observed_rows", "BIGINT"),
        ("unexpected_rows", "BIGINT"),
        ("detail", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("suite", "VARCHAR"),
        ("observed_value", "VARCHAR"),
    ],
    "recon_findings": [
        ("as_of", "TIMESTAMP"),
        ("check_name", "VARCHAR"),
        ("status", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("period", "VARCHAR"),
        ("day", "VARCHAR"),
        ("object_id", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("detail", "VARCHAR"),
        ("difference", "DECIMAL(38, 12)"),
        ("unit", "VARCHAR"),
    ],
    # accepted explanations of a drift (meterline explain): who, why, when recorded, and until when
    # (data time: it applies while as_of < expires_at). NULL key fields match any value.
    "recon_explanations": [
        ("explanation_id", "VARCHAR"),
        ("check_name", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("period", "VARCHAR"),
        ("day", "VARCHAR"),
        ("object_id", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("explained_by", "VARCHAR"),
        ("recorded_at", "TIMESTAMP"),
        ("expires_at", "TIMESTAMP"),
        ("revoked_at", "TIMESTAMP"),
    ],
    # engineers' alerts (reconcile/alerts.py): the open findings as of each night, one snapshot
    # per as_of (a rerun of the night replaces it); the next night is classified against it
    "alert_state": [
        ("as_of", "TIMESTAMP"),
        ("finding_key", "VARCHAR"),
        ("check_name", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("period", "VARCHAR"),
        ("day", "VARCHAR"),
        ("object_id", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("status", "VARCHAR"),
        ("difference", "DECIMAL(38, 12)"),
        ("unit", "VARCHAR"),
        ("first_seen_as_of", "TIMESTAMP"),
        ("changed_as_of", "TIMESTAMP"),
        ("last_seen_as_of", "TIMESTAMP"),
        ("carried", "BOOLEAN"),
    ],
    # every alerted item per channel and attempt: outcome sent | failed with a one-line reason
    # (secrets masked); a rerun of the night sends only what no earlier attempt sent
    "alert_log": [
        ("as_of", "TIMESTAMP"),
        ("alert_date", "DATE"),
        ("run_seq", "BIGINT"),
        ("channel", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("item_key", "VARCHAR"),
        ("check_name", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("status", "VARCHAR"),
        ("difference", "DECIMAL(38, 12)"),
        ("unit", "VARCHAR"),
        ("outcome", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("message_title", "VARCHAR"),
    ],
    # the Stripe push (exports/stripe_push.py): one row per object meterline creates in Stripe
    # for an issued invoice. object_key is deterministic (account, period, line, invoice version,
    # content hash), the Stripe idempotency key and metadata meterline_key. kind: customer |
    # invoice_item | invoice | finalize; state: pending -> sent (written before each create
    # attempt) -> confirmed (stripe_id known). ledger_as_of is data time (the period lock's);
    # *_sent_at / confirmed_at are wall-clock UTC, an operational trail no logic reads back.
    "stripe_outbox": [
        ("object_key", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("period", "VARCHAR"),
        ("invoice_id", "VARCHAR"),
        ("invoice_line_id", "VARCHAR"),
        ("invoice_version", "BIGINT"),
        ("currency", "VARCHAR"),
        ("amount_minor", "BIGINT"),
        ("stripe_amount", "BIGINT"),
        ("payload_hash", "VARCHAR"),
        ("state", "VARCHAR"),
        ("stripe_id", "VARCHAR"),
        ("attempts", "BIGINT"),
        ("last_error", "VARCHAR"),
        ("ledger_as_of", "TIMESTAMP"),
        ("first_sent_at", "TIMESTAMP"),
        ("last_sent_at", "TIMESTAMP"),
        ("confirmed_at", "TIMESTAMP"),
        ("confirmed_by", "VARCHAR"),
    ],
}


def all_raw_tables() -> dict[str, list[tuple[str, str]]]:
    """Every raw table with the batch columns appended."""
    return {name: cols + BATCH_COLUMNS for name, cols in RAW_TABLES.items()}
