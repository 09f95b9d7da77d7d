"""meterline's ledger: what the batch ledger says has been ingested (the one place stages ask
"loaded through when?"), the draft invoices' version history, and voids of issued invoices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from meterline.errors import InvoiceError
from meterline.warehouse import Connection, qualified


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
