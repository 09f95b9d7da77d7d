"""The nightly warns when the Events API's 30 days cannot cover a gap in the Stripe history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ingest.load import ensure_raw
from meterline.config import parse_db_url
from meterline.runner import stripe_gap_warning
from meterline.warehouse import connect


def _ledger(conn, source: str, start: dt.datetime, end: dt.datetime) -> None:
    conn.execute(
        "INSERT INTO raw.batch_ledger (batch_id, source, interval_start, interval_end, row_count, "
        "checksum, status, loaded_at) VALUES (?, ?, ?, ?, 0, 'x', 'loaded', ?)",
        [f"{source}_{start:%Y%m%d}", source, start, end, end])


def test_gap_warnings(tmp_path: Path) -> None:
    target = parse_db_url("duckdb:///wh.duckdb", tmp_path, "t")
    with connect(target) as conn:
        ensure_raw(conn)
        first = stripe_gap_warning(conn, dt.date(2026, 10, 1))
        assert first and "no Stripe data before 2026-10-01" in first
        assert "resync stripe --until 2026-10-01" in first
        # a resync of the history up to the first night: no warning
        _ledger(conn, "stripe_resync", dt.datetime(1970, 1, 1), dt.datetime(2026, 10, 1))
        assert stripe_gap_warning(conn, dt.date(2026, 10, 1)) is None
        _ledger(conn, "stripe", dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 2))
        assert stripe_gap_warning(conn, dt.date(2026, 10, 30)) is None  # 28 days: events cover it
        late = stripe_gap_warning(conn, dt.date(2026, 11, 15))           # 44 days: they do not
        assert late and "ends on 2026-10-02" in late
        assert "resync stripe --since 2026-10-02 --until 2026-11-15" in late
