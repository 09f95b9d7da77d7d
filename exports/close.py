"""Period close: issue the period's invoices, write its exports, lock it.

A locked period never changes: closing it again writes nothing and its exports stay
byte-identical. Files are written to a temporary folder and renamed into place only after the
ledger transaction committed, so a failed close leaves nothing half-written.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import hashlib
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa

from meterline.errors import IntervalError
from meterline.ledger import loaded_through
from meterline.warehouse import Connection, qualified

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

INVOICE_COLUMNS = [
    "invoice_id", "account_id", "period", "currency", "total_minor", "line_count", "version",
    "content_hash",
]
LINE_COLUMNS = [
    "invoice_line_id", "invoice_id", "account_id", "period", "service_period", "line_key",
    "line_type", "category", "currency", "quantity", "amount_minor",
]


def parse_period(period: str) -> tuple[dt.date, dt.date]:
    m = PERIOD_RE.match(period or "")
    if not m:
        raise IntervalError(f"period must look like YYYY-MM, got {period!r}")
    year, month = int(m.group(1)), int(m.group(2))
    start = dt.date(year, month, 1)
    end = start + dt.timedelta(days=calendar.monthrange(year, month)[1])
    return start, end


def missing_nights(conn: Connection, start: dt.date, end: dt.date) -> list[dt.date]:
    rows = conn.fetchall(
        f"SELECT DISTINCT interval_start FROM {qualified('raw', 'batch_ledger')} "
        "WHERE source = 'metering' AND status = 'loaded' AND interval_start >= ? AND interval_start < ?",
        [dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time())],
    )
    have = {r[0].date() for r in rows}
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    return [d for d in days if d not in have]


def is_locked(conn: Connection, period: str) -> bool:
    row = conn.fetchone(f"SELECT count(*) FROM {qualified('ledger', 'period_locks')} WHERE period = ?", [period])
    return bool(row and row[0])


def _csv_bytes(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r[c] is None else r[c] for c in columns])
    return buf.getvalue().encode("utf-8")


def build_files(invoices: list[dict[str, Any]], lines: list[dict[str, Any]], period: str) -> dict[str, bytes]:
    files = {
        "invoice_register.csv": _csv_bytes(INVOICE_COLUMNS, invoices),
        "invoice_lines.csv": _csv_bytes(LINE_COLUMNS, lines),
    }
    manifest = {
        "period": period,
        "files": [
            {"name": name, "sha256": hashlib.sha256(data).hexdigest(),
             "rows": data.count(b"\n") - 1}
            for name, data in sorted(files.items())
        ],
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return files


def close_period(conn: Connection, period: str, exports_dir: Path) -> dict[str, Any]:
    """Issue and lock `period` from the current marts; write `exports_dir/<period>/`."""
    start, end = parse_period(period)
    target = exports_dir / period
    if is_locked(conn, period):
        return {"period": period, "action": "already_closed", "exports": sorted(str(p) for p in target.glob("*"))}
    missing = missing_nights(conn, start, end)
    if missing:
        shown = ", ".join(d.isoformat() for d in missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise IntervalError(
            f"cannot close {period}: nightly runs missing for {len(missing)} day(s): {shown}"
        )
    invoices = conn.fetch_dicts(
        f"SELECT {', '.join(INVOICE_COLUMNS)} FROM {qualified('marts', 'fct_invoices')} "
        "WHERE period = ? ORDER BY invoice_id", [period])
    lines = conn.fetch_dicts(
        f"SELECT {', '.join(LINE_COLUMNS)} FROM {qualified('marts', 'fct_invoice_lines')} "
        "WHERE period = ? ORDER BY invoice_line_id", [period])
    as_of = loaded_through(conn, ["metering"])
    files = build_files(invoices, lines, period)
    manifest_sha = hashlib.sha256(files["manifest.json"]).hexdigest()

    exports_dir.mkdir(parents=True, exist_ok=True)
    tmp = exports_dir / f".{period}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        with conn.transaction():
            if invoices:
                conn.insert_arrow("ledger", "issued_invoices", pa.Table.from_pylist(invoices))
            if lines:
                conn.insert_arrow("ledger", "issued_invoice_lines", pa.Table.from_pylist(lines))
            conn.execute(
                f"INSERT INTO {qualified('ledger', 'period_locks')} (period, locked_at_interval, "
                "exports_manifest_sha256) VALUES (?, ?, ?)",
                [period, as_of, manifest_sha],
            )
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    totals: dict[str, int] = {}
    for inv in invoices:
        totals[inv["currency"]] = totals.get(inv["currency"], 0) + int(inv["total_minor"])
    return {
        "period": period,
        "action": "closed",
        "invoices": len(invoices),
        "invoice_totals_minor": dict(sorted(totals.items())),
        "exports": sorted(str(target / n) for n in files),
    }
