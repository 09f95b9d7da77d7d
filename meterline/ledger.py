"""meterline's ledger: what the batch ledger says has been ingested (the one place stages ask
"loaded through when?"), the draft invoices' version history, and voids of issued invoices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from meterline.errors import InvoiceError
from meterline.warehouse import Connection, qualified

LEDGER_SCHEMA = "ledger"

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
    # finance reports emailed: one row per (kind, key, content) sent, so a retried or rerun
    # task never emails the same report twice (exports/reports run_report(once=True))
    "report_log": [
        ("kind", "VARCHAR"),
        ("report_key", "VARCHAR"),
        ("content_sha256", "VARCHAR"),
        ("recipients", "VARCHAR"),
        ("sent_at", "TIMESTAMP"),
    ],
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


def ensure_ledger(conn: Connection) -> None:
    """Create the ledger schema and its tables (or their new columns) if they are not there."""
    conn.ensure_schema(LEDGER_SCHEMA)
    for name, cols in LEDGER_TABLES.items():
        conn.ensure_table(LEDGER_SCHEMA, name, cols)


def loaded_through(conn: Connection, sources: Sequence[str],
                   not_after: dt.datetime | None = None) -> dt.datetime | None:
    """The end of the latest loaded interval of any of `sources` (optionally ending by
    `not_after`), or None when nothing is loaded. Reconciliation's `as_of` is
    `loaded_through(conn, ["metering"])`: data-driven, never the clock."""
    marks = ", ".join("?" for _ in sources)
    sql = (f"SELECT max(interval_end) FROM {qualified('raw', 'batch_ledger')} "
           f"WHERE source IN ({marks}) AND status = 'loaded'")
    params: list = list(sources)
    if not_after is not None:
        sql += " AND interval_end <= ?"
        params.append(not_after)
    row = conn.fetchone(sql, params)
    return row[0] if row else None


def record_invoice_versions(conn: Connection) -> int:
    """Record each draft invoice's content as of this build in `ledger.invoice_versions`.

    `marts.fct_invoices` computes a draft's version from this table (the latest recorded
    version, plus one when the lines changed since); writing the new (invoice, version, hash)
    after each build makes the next build see it. A rebuild with the same data writes nothing.
    Returns the number of versions recorded."""
    as_of = loaded_through(conn, ["metering"])
    versions = qualified("ledger", "invoice_versions")
    with conn.transaction():
        before = conn.fetchone(f"SELECT count(*) FROM {versions}")
        conn.execute(
            f"INSERT INTO {versions} (invoice_id, version, content_hash, total_minor, as_of) "
            f"SELECT f.invoice_id, f.version, f.content_hash, f.total_minor, ? "
            f"FROM {qualified('marts', 'fct_invoices')} AS f WHERE f.state = 'draft' AND NOT EXISTS "
            f"(SELECT 1 FROM {versions} AS v WHERE v.invoice_id = f.invoice_id AND v.version = f.version)",
            [as_of],
        )
        after = conn.fetchone(f"SELECT count(*) FROM {versions}")
    return int(after[0]) - int(before[0])


def void_invoice(conn: Connection, invoice_id: str, reason: str,
                 at: dt.datetime | None = None) -> dict[str, Any]:
    """Void the issued invoice `invoice_id` in `ledger.issued_invoices`, in one transaction.

    Rules (docs/pricing.md, "void"): only an issued invoice can be voided (a draft is restated
    every night; an unknown id is an error); the reason is required and kept with it; voiding an
    invoice that is already void changes nothing and says so (its first `voided_at` and reason
    stay). The invoice and its lines stay in the ledger as issued; every model reads
    `voided_at IS NOT NULL` as "no longer billed", so the next dbt build shows it as `void`, bills
    its period's charges again as `unbilled` adjustment lines on the next draft invoice and
    returns the credits it drew.

    `voided_at` is `at`, by default the ledger's data time - the end of the latest loaded
    metering interval (`loaded_through`), as for a close - not the wall clock.
    Returns a summary: action `voided` or `already_void`, and the invoice's ledger fields."""
    invoice_id = (invoice_id or "").strip()
    reason = (reason or "").strip()
    if not invoice_id:
        raise InvoiceError("say which invoice to void: --invoice INVOICE_ID")
    if not reason:
        raise InvoiceError(f"voiding {invoice_id} needs a reason (--reason TEXT); it is kept with the invoice")
    issued = qualified("ledger", "issued_invoices")
    with conn.transaction():
        if at is None:
            at = loaded_through(conn, ["metering"])
            if at is None:
                known = conn.fetchone(f"SELECT count(*) FROM {issued} WHERE invoice_id = ?", [invoice_id])
                raise InvoiceError(
                    f"cannot void {invoice_id}: no metering interval is loaded to date the void by"
                    if known and known[0] else _not_issued(conn, invoice_id))
        # one guarded statement: of two concurrent voids exactly one sets voided_at
        rows = conn.fetchall(
            f"UPDATE {issued} SET voided_at = ?, void_reason = ? "
            "WHERE invoice_id = ? AND voided_at IS NULL "
            "RETURNING account_id, period, currency, total_minor, voided_at, void_reason",
            [at, reason, invoice_id],
        )
        action = "voided"
        if len(rows) > 1:  # raising rolls the update back
            raise InvoiceError(
                f"the ledger holds {len(rows)} issued invoices with id {invoice_id}; nothing voided")
        if not rows:
            rows = conn.fetchall(
                f"SELECT account_id, period, currency, total_minor, voided_at, void_reason "
                f"FROM {issued} WHERE invoice_id = ? ORDER BY voided_at", [invoice_id])
            if not rows:
                raise InvoiceError(_not_issued(conn, invoice_id))
            action = "already_void"
    account_id, period, currency, total_minor, voided_at, void_reason = rows[0]
    return {
        "invoice_id": invoice_id,
        "action": action,
        "account_id": account_id,
        "period": period,
        "currency": currency,
        "total_minor": None if total_minor is None else int(total_minor),
        "voided_at": voided_at.isoformat(sep=" ") if voided_at is not None else None,
        "void_reason": void_reason,
    }


def _not_issued(conn: Connection, invoice_id: str) -> str:
    """Why `invoice_id` cannot be voided: a draft (per the latest build) or unknown."""
    if ("marts", "fct_invoices") in conn.tables(["marts"]):
        row = conn.fetchone(
            f"SELECT period, state FROM {qualified('marts', 'fct_invoices')} WHERE invoice_id = ?",
            [invoice_id])
        if row and row[1] == "draft":
            return (f"invoice {invoice_id} is a draft (period {row[0]} is not closed): only an issued "
                    "invoice can be voided; a draft is recomputed every night")
    return (f"no issued invoice {invoice_id} in the ledger (ledger.issued_invoices); "
            "issued invoice ids are in marts.fct_invoices")
