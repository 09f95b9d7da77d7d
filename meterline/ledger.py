"""What the batch ledger says has been ingested: the one place stages ask "loaded through when?"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

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
