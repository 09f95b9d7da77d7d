"""Period close: issue the period's invoices, freeze its journal and revenue, write its exports,
lock it. Reopen, with an explicit flag and a reason, leaves an audit row.

A locked period never changes: closing it again re-exports it from its frozen rows and the files
are byte-identical (checked against the manifest hash stored with the lock). Files are written
to a temporary folder and renamed into place only after the ledger transaction committed, so a
failed close leaves nothing half-written. Validation (unmapped GL account, unbalanced entry,
currency without a known exponent) runs before anything is written.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from exports.accounting import INVOICE_COLUMNS, LINE_COLUMNS, build_accounting_exports
from meterline.errors import ExportError, IntervalError
from meterline.ledger import loaded_through
from meterline.warehouse import Connection, qualified

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

JOURNAL_SNAPSHOT_COLUMNS = [
    "journal_line_id", "entry_id", "entry_date", "accounting_period", "entry_type", "account_id",
    "currency", "gl_key", "gl_account", "gl_account_name", "gl_account_type", "product",
    "amount_minor", "memo", "is_catchup", "service_period", "reference",
]
REVENUE_SNAPSHOT_COLUMNS = [
    "account_id", "currency", "product", "revenue_date", "accounting_period", "service_period",
    "revenue_source", "revenue_minor", "is_catchup",
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


def check_closable(conn: Connection, period: str) -> None:
    """Raise IntervalError unless every night of `period` was run and every earlier billing
    period is locked (periods close in order)."""
    start, end = parse_period(period)
    missing = missing_nights(conn, start, end)
    if missing:
        raise IntervalError(
            f"cannot close {period}: nightly runs missing for {len(missing)} day(s), first {missing[0]} "
            f"(run: meterline run --start {missing[0]} --end {missing[-1]})")
    earlier = _earlier_open_periods(conn, period)
    if earlier:
        raise IntervalError(f"cannot close {period}: earlier period(s) still open: {', '.join(earlier)} "
                            f"(close them first, in order)")


def is_issued(conn: Connection, period: str) -> bool:
    """The period's invoices were issued (it was closed once; reopening does not un-issue)."""
    row = conn.fetchone(f"SELECT count(*) FROM {qualified('ledger', 'period_locks')} WHERE period = ?", [period])
    return bool(row and row[0])


def _latest_audit(conn: Connection, period: str) -> dict[str, Any] | None:
    rows = conn.fetch_dicts(
        f"SELECT seq, action, reason, exports_manifest_sha256 FROM {qualified('ledger', 'period_audit')} "
        "WHERE period = ? ORDER BY seq DESC LIMIT 1", [period])
    return rows[0] if rows else None


def is_locked(conn: Connection, period: str) -> bool:
    """Closed and not reopened since: its journal, revenue and exports are frozen."""
    if not is_issued(conn, period):
        return False
    audit = _latest_audit(conn, period)
    return audit is None or audit["action"] == "closed"


def _locked_manifest_sha(conn: Connection, period: str) -> str | None:
    audit = _latest_audit(conn, period)
    if audit is not None and audit["exports_manifest_sha256"]:
        return audit["exports_manifest_sha256"]
    row = conn.fetchone(
        f"SELECT exports_manifest_sha256 FROM {qualified('ledger', 'period_locks')} WHERE period = ?", [period])
    return row[0] if row else None


def _next_seq(conn: Connection) -> int:
    row = conn.fetchone(f"SELECT coalesce(max(seq), 0) FROM {qualified('ledger', 'period_audit')}")
    return int(row[0]) + 1


def _frozen_window(conn: Connection, period: str) -> tuple[str, list[str]]:
    """The accounting periods whose journal and revenue the close of `period` freezes and its
    exports show: `period` itself and, at the first close, every accounting period before it
    (prehistory: e.g. a prepaid credit sold before the first billing period), so no locked
    opening balance can move afterwards. The same window as the dbt macro
    accounting_lock_period. A SQL condition on accounting_period and its parameters."""
    row = conn.fetchone(
        f"SELECT max(period) FROM {qualified('ledger', 'period_locks')} WHERE period < ?", [period])
    if row and row[0]:
        return "accounting_period > ? AND accounting_period <= ?", [row[0], period]
    return "accounting_period <= ?", [period]


def _currencies(conn: Connection) -> dict[str, int | None]:
    # a NULL exponent stays None: the export validation names the currency (int() would crash)
    return {r[0]: None if r[1] is None else int(r[1]) for r in conn.fetchall(
        f"SELECT currency, minor_unit_exponent FROM {qualified('seeds', 'currencies')}")}


def _plain(value: Any) -> Any:
    """Engine-independent Python values: an integral DECIMAL (PostgreSQL sums) becomes an int."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _plain_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def _period_rows(conn: Connection, period: str) -> dict[str, list[dict[str, Any]]]:
    """Everything the exports of a locked `period` show: its frozen journal and revenue and its
    issued invoices from the ledger; the roll-forward and waterfall from the marts (built only
    from locked periods up to `period`). The first close and every re-export read the same."""
    ledger = lambda t: qualified("ledger", t)  # noqa: E731
    marts = lambda t: qualified("marts", t)  # noqa: E731
    window, params = _frozen_window(conn, period)
    journal = _plain_rows(conn.fetch_dicts(
        f"SELECT {', '.join(JOURNAL_SNAPSHOT_COLUMNS)} FROM {ledger('locked_journal_lines')} "
        f"WHERE {window} ORDER BY journal_line_id", params))
    for r in journal:
        amount = int(r["amount_minor"])
        r["debit_minor"], r["credit_minor"] = max(amount, 0), max(-amount, 0)
    revenue = _plain_rows(conn.fetch_dicts(
        f"SELECT {', '.join(REVENUE_SNAPSHOT_COLUMNS)} FROM {ledger('locked_revenue_daily')} "
        f"WHERE {window} ORDER BY account_id, currency, product, revenue_date, service_period, "
        "revenue_source, is_catchup", params))
    rollforward = _plain_rows(conn.fetch_dicts(
        f"SELECT currency, accounting_period, balance, opening_minor, billed_minor, recognized_minor, "
        f"voided_minor, catchup_minor, closing_minor FROM {marts('fct_balance_rollforward')} WHERE accounting_period = ? "
        "ORDER BY currency, balance", [period]))
    waterfall = _plain_rows(conn.fetch_dicts(
        f"SELECT currency, origin_period, recognition_period, sold_minor, recognized_minor, remaining_minor "
        f"FROM {marts('fct_deferred_revenue_waterfall')} WHERE recognition_period <= ? "
        "ORDER BY currency, origin_period, recognition_period", [period]))
    invoices = _plain_rows(conn.fetch_dicts(
        f"SELECT {', '.join(INVOICE_COLUMNS)}, 'issued' AS state FROM {ledger('issued_invoices')} "
        "WHERE period = ? ORDER BY invoice_id", [period]))
    lines = _plain_rows(conn.fetch_dicts(
        f"SELECT {', '.join(LINE_COLUMNS)} FROM {ledger('issued_invoice_lines')} "
        "WHERE period = ? ORDER BY invoice_line_id", [period]))
    return {"journal_lines": journal, "revenue_daily": revenue, "rollforward": rollforward,
            "waterfall": waterfall, "invoices": invoices, "invoice_lines": lines}


def _mart_rows(conn: Connection, period: str) -> dict[str, list[dict[str, Any]]]:
    """What the close freezes: the period's journal lines and revenue rows and (first close) its
    invoices, from the marts just built."""
    marts = lambda t: qualified("marts", t)  # noqa: E731
    window, params = _frozen_window(conn, period)
    return {
        "journal_lines": _plain_rows(conn.fetch_dicts(
            f"SELECT {', '.join(JOURNAL_SNAPSHOT_COLUMNS)} FROM {marts('fct_journal_lines')} "
            f"WHERE {window} ORDER BY journal_line_id", params)),
        "revenue_daily": _plain_rows(conn.fetch_dicts(
            f"SELECT {', '.join(REVENUE_SNAPSHOT_COLUMNS)} FROM {marts('fct_revenue_daily')} "
            f"WHERE {window}", params)),
        "invoices": _plain_rows(conn.fetch_dicts(
            f"SELECT {', '.join(INVOICE_COLUMNS)} FROM {marts('fct_invoices')} "
            "WHERE period = ? ORDER BY invoice_id", [period])),
        "invoice_lines": _plain_rows(conn.fetch_dicts(
            f"SELECT {', '.join(LINE_COLUMNS)} FROM {marts('fct_invoice_lines')} "
            "WHERE period = ? ORDER BY invoice_line_id", [period])),
    }


def _build(conn: Connection, period: str, rows: dict[str, list[dict[str, Any]]]) -> dict[str, bytes]:
    return build_accounting_exports(period, currencies=_currencies(conn), **rows)


def _write_folder(exports_dir: Path, period: str, files: dict[str, bytes]) -> Path:
    """Write every file into a temporary folder, then swap it into place."""
    target = exports_dir / period
    exports_dir.mkdir(parents=True, exist_ok=True)
    tmp = exports_dir / f".{period}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        old = exports_dir / f".{period}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _earlier_open_periods(conn: Connection, period: str) -> list[str]:
    periods = [r[0] for r in conn.fetchall(
        f"SELECT period FROM {qualified('intermediate', 'int_billing_periods')} WHERE period < ? ORDER BY period",
        [period])]
    return [p for p in periods if not is_locked(conn, p)]


def _totals(invoices: list[dict[str, Any]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for inv in invoices:
        totals[inv["currency"]] = totals.get(inv["currency"], 0) + int(inv["total_minor"])
    return dict(sorted(totals.items()))


def close_period(conn: Connection, period: str, exports_dir: Path,
                 requested_by: str = "meterline close") -> dict[str, Any]:
    """Issue (first close only), freeze and lock `period` from the current marts; write
    `exports_dir/<period>/`. A locked period is re-exported, byte-identical."""
    start, end = parse_period(period)
    if is_locked(conn, period):
        files = _build(conn, period, _period_rows(conn, period))
        sha = hashlib.sha256(files["manifest.json"]).hexdigest()
        expected = _locked_manifest_sha(conn, period)
        if expected and sha != expected:
            raise ExportError(
                f"re-export of locked period {period} differs from its close (manifest sha256 {sha[:12]} "
                f"!= {expected[:12]}); its frozen rows were changed outside meterline")
        target = _write_folder(exports_dir, period, files)
        return {"period": period, "action": "already_closed", "manifest_sha256": sha,
                "exports": sorted(str(target / n) for n in files)}
    check_closable(conn, period)
    reclose = is_issued(conn, period)
    fresh = _mart_rows(conn, period)
    as_of = loaded_through(conn, ["metering"])
    invoices = fresh["invoices"]

    # one transaction: issue, freeze, then build the files from what was frozen (the same read
    # every re-export does) - a validation error rolls everything back, nothing is written
    with conn.transaction():
        if not reclose:
            if invoices:
                conn.insert_arrow("ledger", "issued_invoices", pa.Table.from_pylist(invoices))
            if fresh["invoice_lines"]:
                conn.insert_arrow("ledger", "issued_invoice_lines", pa.Table.from_pylist(fresh["invoice_lines"]))
        if fresh["journal_lines"]:
            conn.insert_arrow("ledger", "locked_journal_lines",
                              _snapshot_table(fresh["journal_lines"], JOURNAL_SNAPSHOT_TYPES))
        if fresh["revenue_daily"]:
            conn.insert_arrow("ledger", "locked_revenue_daily",
                              _snapshot_table(fresh["revenue_daily"], REVENUE_SNAPSHOT_TYPES))
        rows = _period_rows(conn, period)
        files = _build(conn, period, rows)
        manifest_sha = hashlib.sha256(files["manifest.json"]).hexdigest()
        if reclose:
            conn.execute(f"UPDATE {qualified('ledger', 'period_locks')} SET exports_manifest_sha256 = ? "
                         "WHERE period = ?", [manifest_sha, period])
        else:
            conn.execute(
                f"INSERT INTO {qualified('ledger', 'period_locks')} (period, locked_at_interval, "
                "exports_manifest_sha256) VALUES (?, ?, ?)",
                [period, as_of, manifest_sha],
            )
        conn.execute(
            f"INSERT INTO {qualified('ledger', 'period_audit')} (seq, period, action, reason, requested_by, "
            "as_of, exports_manifest_sha256) VALUES (?, ?, 'closed', ?, ?, ?, ?)",
            [_next_seq(conn), period, "reclose after reopen" if reclose else "close", requested_by, as_of,
             manifest_sha],
        )
        invoices = rows["invoices"]
        journal = rows["journal_lines"]
    target = _write_folder(exports_dir, period, files)
    return {
        "period": period,
        "action": "reclosed" if reclose else "closed",
        "invoices": len(invoices),
        "invoice_totals_minor": _totals(invoices),
        "journal_lines": len(journal),
        "manifest_sha256": manifest_sha,
        "exports": sorted(str(target / n) for n in files),
    }


def reopen_period(conn: Connection, period: str, reason: str, requested_by: str = "meterline close --reopen") -> dict:
    """Unfreeze a locked period's journal and revenue (its invoices stay issued) and leave an
    audit row. Only the latest locked period can be reopened: a later locked period already
    booked catch-ups on top of it."""
    parse_period(period)
    if not (reason or "").strip():
        raise IntervalError("reopening a period needs a reason (--reason)")
    if not is_locked(conn, period):
        raise IntervalError(f"cannot reopen {period}: it is not locked")
    later = [r[0] for r in conn.fetchall(
        f"SELECT period FROM {qualified('ledger', 'period_locks')} WHERE period > ? ORDER BY period", [period])]
    later = [p for p in later if is_locked(conn, p)]
    if later:
        raise IntervalError(f"cannot reopen {period}: later period(s) locked: {', '.join(later)} (reopen them first)")
    as_of = loaded_through(conn, ["metering"])
    window, params = _frozen_window(conn, period)
    with conn.transaction():
        for table in ("locked_journal_lines", "locked_revenue_daily"):
            conn.execute(f"DELETE FROM {qualified('ledger', table)} WHERE {window}", params)
        conn.execute(
            f"INSERT INTO {qualified('ledger', 'period_audit')} (seq, period, action, reason, requested_by, "
            "as_of, exports_manifest_sha256) VALUES (?, ?, 'reopened', ?, ?, ?, NULL)",
            [_next_seq(conn), period, reason.strip(), requested_by, as_of],
        )
    return {"period": period, "action": "reopened", "reason": reason.strip()}


JOURNAL_SNAPSHOT_TYPES = {
    "entry_date": pa.date32(), "amount_minor": pa.int64(), "is_catchup": pa.bool_(),
}
REVENUE_SNAPSHOT_TYPES = {
    "revenue_date": pa.date32(), "revenue_minor": pa.int64(), "is_catchup": pa.bool_(),
}


def _snapshot_table(rows: list[dict[str, Any]], types: dict[str, pa.DataType]) -> pa.Table:
    columns = list(rows[0])
    arrays = {}
    for c in columns:
        values = [r[c] for r in rows]
        if c in types:
            if types[c] == pa.int64():
                values = [None if v is None else int(v) for v in values]
            arrays[c] = pa.array(values, type=types[c])
        else:
            arrays[c] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return pa.table(arrays)
