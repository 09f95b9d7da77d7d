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
