"""Accepted explanations of reconciliation drift: data, not code (`meterline explain`).

An explanation names a check and the key fields of the rows it covers (account, category,
period, day, object; a field left out matches any value), who accepted it, why, and until when it
holds. The rec_* marts turn the status of a covered finding into `explained` while as_of (data
time) is before `expires_at`; after that the drift is a finding again. Revoking one keeps its row
(the audit trail) and stops it covering anything.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from meterline.errors import ConfigError
from meterline.warehouse import Connection, qualified

KEY_FIELDS = ("account_id", "category", "period", "day", "object_id")
PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _validate(check_name: str, keys: dict[str, str | None], reason: str, explained_by: str,
              checks: list[str]) -> dict[str, str]:
    if check_name not in checks:
        raise ConfigError(f"unknown check {check_name!r} (known: {', '.join(checks)})")
    given = {k: v.strip() for k, v in keys.items() if v is not None and v.strip()}
    unknown = set(given) - set(KEY_FIELDS)
    if unknown:
        raise ConfigError(f"unknown key field(s): {', '.join(sorted(unknown))}")
    if not given:
        raise ConfigError("an explanation must name what it covers: --account, --category, --period, "
                          "--day or --object (an explanation of a whole check would hide every drift)")
    if "period" in given and not PERIOD_RE.match(given["period"]):
        raise ConfigError(f"--period must look like YYYY-MM, got {given['period']!r}")
    if "day" in given:
        try:
            given["day"] = dt.date.fromisoformat(given["day"]).isoformat()
        except ValueError as exc:
            raise ConfigError(f"--day must look like YYYY-MM-DD, got {given['day']!r}") from exc
    if not reason.strip():
        raise ConfigError("an explanation needs a reason (--reason)")
    if not explained_by.strip():
        raise ConfigError("an explanation needs who accepted it (--by)")
    return given


def record(conn: Connection, check_name: str, keys: dict[str, str | None], reason: str, explained_by: str,
           until: dt.date | None, checks: list[str], recorded_at: dt.datetime | None = None) -> dict[str, Any]:
    """Record an explanation; return it. The same explanation (same check, keys, reason, author and
    expiry) recorded twice is one explanation: the second call returns the first."""
    given = _validate(check_name, keys, reason, explained_by, checks)
    expires_at = dt.datetime.combine(until, dt.time()) if until else None
    table = qualified("ledger", "recon_explanations")
    where = " AND ".join(
        [f"{k} = ?" if k in given else f"{k} IS NULL" for k in KEY_FIELDS]
        + ["check_name = ?", "reason = ?", "explained_by = ?", "revoked_at IS NULL",
           "expires_at = ?" if expires_at else "expires_at IS NULL"])
    params: list[Any] = [given[k] for k in KEY_FIELDS if k in given] + [check_name, reason.strip(),
                                                                        explained_by.strip()]
    if expires_at:
        params.append(expires_at)
    with conn.transaction():
        same = conn.fetch_dicts(f"SELECT * FROM {table} WHERE {where}", params)
        if same:
            return _plain(same[0])
        n = conn.fetchone(f"SELECT count(*) FROM {table}")[0]
        row = {"explanation_id": f"exp-{int(n) + 1:05d}", "check_name": check_name,
               **{k: given.get(k) for k in KEY_FIELDS}, "reason": reason.strip(),
               "explained_by": explained_by.strip(),
               "recorded_at": (recorded_at or dt.datetime.now(dt.UTC)).replace(tzinfo=None, microsecond=0),
               "expires_at": expires_at, "revoked_at": None}
        cols = list(row)
        conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                     [row[c] for c in cols])
    return _plain(row)


def revoke(conn: Connection, explanation_id: str, revoked_at: dt.datetime | None = None) -> dict[str, Any]:
    table = qualified("ledger", "recon_explanations")
    rows = conn.fetch_dicts(f"SELECT * FROM {table} WHERE explanation_id = ?", [explanation_id])
    if not rows:
        raise ConfigError(f"no explanation {explanation_id!r} (see: meterline explain --list)")
    if rows[0]["revoked_at"] is None:
        when = (revoked_at or dt.datetime.now(dt.UTC)).replace(tzinfo=None, microsecond=0)
        conn.execute(f"UPDATE {table} SET revoked_at = ? WHERE explanation_id = ?", [when, explanation_id])
        rows = conn.fetch_dicts(f"SELECT * FROM {table} WHERE explanation_id = ?", [explanation_id])
    return _plain(rows[0])


def listing(conn: Connection) -> list[dict[str, Any]]:
    return [_plain(r) for r in conn.fetch_dicts(
        f"SELECT * FROM {qualified('ledger', 'recon_explanations')} ORDER BY explanation_id")]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime | dt.date) else v) for k, v in row.items()}
