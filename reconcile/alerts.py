"""Engineers' alerts for reconciliation drift: a Slack-compatible webhook and SMTP email.

The runner calls `notify` after each reconciliation with that night's findings and the checks
that errored. Rules (data time, i.e. `as_of`, never the wall clock):

- A finding's identity is (check_name, account_id, category, period, day, object_id, reason);
  its status, difference and unit are attributes.
- Open at this as_of, not open at the previous one: a "new" alert, at once.
- Open at both with another status, difference or unit: a "changed" alert, at once.
- Open at both, unchanged: only in the daily digest (one digest per as_of date and channel).
- Open at the previous as_of, absent now: a "resolved" announcement. Absence proves nothing when
  the finding's check errored tonight: such a finding stays open as last confirmed.
- A check that errored: an "error" alert at once, on every run (a rerun included: each run that
  raised is a new occurrence). An error is never reported as drift or as a pass.

State lives in the warehouse. `ledger.alert_state` holds one snapshot of the open findings per
as_of (a rerun of the as_of replaces its snapshot); a night is classified against the latest
snapshot strictly before it, so a rerun classifies exactly as the first run did.
`ledger.alert_log` holds one row per alerted item, channel and attempt with the outcome
(sent | failed) and a one-line reason; a rerun of the as_of sends on each channel only the items
not yet sent there (what failed is retried; the digest is sent once per date).

A failing channel (refused connection, HTTP 5xx, SMTP error, timeout) hides nothing: the other
channels still send, and `AlertReport` says per channel what was sent and what failed and why.
The webhook URL and the SMTP password never appear in a message, a reason or a log line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, urlsplit

import pyarrow as pa

from meterline.config import Config
from meterline.smtp import close_session, failure_reason, open_session
from meterline.smtp import settings as smtp_settings
from meterline.warehouse import Connection, qualified
from reconcile.checks import KEY_FIELDS

log = logging.getLogger("meterline.alerts")

LEDGER_SCHEMA = "ledger"
IDENTITY = ("check_name", *KEY_FIELDS)
# statuses that are never findings (dbt's OK statuses): ignored if a caller passes one
OK_STATUSES = frozenset({"matched", "within_tolerance", "late_pending", "explained"})
KINDS = ("error", "new", "changed", "resolved", "digest")  # the order messages are sent in
IMMEDIATE = ("error", "new", "changed", "resolved")
_SCALE = Decimal("1e-12")  # DECIMAL(38, 12)
_SLACK_TEXT_MAX = 39_000
_SLACK_SECTION_MAX = 2_900
_SLACK_BLOCKS_MAX = 49


def details_command(check_name: str) -> str:
    """The command that shows a check's rows."""
    return f"meterline reconcile --details --check {check_name}"


# -- the report -------------------------------------------------------------------------------


@dataclass
class ChannelReport:
    """What one channel did in this run. `sent` and `failed` hold one line per message."""

    channel: str  # slack | email
    destination: str  # where, with the secret parts masked
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<message>: <one-line reason>"
    already_sent: int = 0  # items left out because this channel sent them before (a rerun)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class AlertMessage:
    kind: str  # error | new | changed | resolved | digest
    title: str
    text: str  # plain text, the whole message
    sections: list[str]  # the text's parts (one per check), for Slack blocks
    item_keys: list[str]  # finding keys (check names for errors)
    items: list[Item] = field(repr=False, default_factory=list)


@dataclass
class AlertReport:
    as_of: dt.datetime
    new: int = 0
    changed: int = 0
    digest: int = 0
    resolved: int = 0
    errors: int = 0
    channels: dict[str, ChannelReport] = field(default_factory=dict)
    messages: list[tuple[str, AlertMessage]] = field(default_factory=list)  # (channel, message)

    @property
    def failed(self) -> bool:
        """Some alert could not be delivered on some channel (see `reasons`)."""
        return any(not c.ok for c in self.channels.values())

    @property
    def reasons(self) -> list[str]:
        return [f"{c.channel}: {line}" for c in self.channels.values() for line in c.failed]

    def summary(self) -> str:
        """One paragraph for the CLI."""
        parts = [
            f"Alerts as of {_ts(self.as_of)}: {self.new} new, {self.changed} changed, "
            f"{self.resolved} resolved, {self.digest} unchanged in the daily digest, "
            f"{self.errors} check error(s)."
        ]
        if not self.channels:
            parts.append("No alert channel is configured: nothing was sent.")
        for c in self.channels.values():
            said = f"{c.channel} ({c.destination}):"
            said += f" sent {'; '.join(c.sent)}." if c.sent else " sent nothing new."
            if c.already_sent:
                said += f" {c.already_sent} item(s) were already sent for this night."
            if c.failed:
                said += f" FAILED {'; '.join(c.failed)}."
            parts.append(said)
        if self.failed:
            parts.append("A rerun of this night sends only what failed.")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "new": self.new, "changed": self.changed, "digest": self.digest,
            "resolved": self.resolved, "errors": self.errors, "failed": self.failed,
            "channels": {
                name: {"destination": c.destination, "sent": c.sent, "failed": c.failed,
                       "already_sent": c.already_sent}
                for name, c in self.channels.items()
            },
        }


# -- classification ---------------------------------------------------------------------------


@dataclass
class Item:
    """One thing to alert: a finding in one of the kinds, or a check error."""

    kind: str
    key: str
    check_name: str
    status: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # the identity's key fields
    difference: Decimal | None = None
    unit: str | None = None
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None  # older than as_of when the check errored tonight
    previous: tuple[str | None, Decimal | None, str | None] | None = None  # status, difference, unit
    detail: str | None = None


def finding_key(f: dict[str, Any]) -> str:
    """A stable id of a finding's identity (NULL fields included as NULL)."""
    ident = [None if f.get(k) is None else str(f[k]) for k in IDENTITY]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32]


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        return d.quantize(_SCALE)
    except (InvalidOperation, ValueError):
        return None


def _naive_utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return t


def classify(
    as_of: dt.datetime,
    findings: Iterable[dict[str, Any]],
    previous: dict[str, dict[str, Any]],
    errored_checks: set[str],
) -> tuple[dict[str, list[Item]], list[dict[str, Any]]]:
    """Items per kind (without errors) and the open-finding snapshot for `as_of`.

    `previous` is the snapshot of the latest earlier as_of, by finding key."""
    current: dict[str, dict[str, Any]] = {}
    for f in findings:
        if f.get("status") in OK_STATUSES:
            continue
        row = {k: (None if f.get(k) is None else str(f[k])) for k in IDENTITY}
        row["status"] = None if f.get("status") is None else str(f["status"])
        row["difference"] = _decimal(f.get("difference"))
        row["unit"] = f.get("unit") or None
        key = finding_key(row)
        seen = current.get(key)
        # the same identity twice in one night (should not happen): keep the larger difference
        if seen is None or (row["difference"] or 0) > (seen["difference"] or 0):
            current[key] = row

    kinds: dict[str, list[Item]] = {k: [] for k in KINDS if k != "error"}
    snapshot: list[dict[str, Any]] = []

    def item(kind: str, key: str, r: dict[str, Any], **kw: Any) -> Item:
        return Item(kind, key, r["check_name"], r["status"], {k: r[k] for k in KEY_FIELDS},
                    r["difference"], r["unit"], **kw)

    for key, r in sorted(current.items()):
        p = previous.get(key)
        if p is None:
            first, changed_at = as_of, as_of
            kinds["new"].append(item("new", key, r, first_seen=as_of, last_seen=as_of))
        elif (p["status"], _decimal(p["difference"]), p["unit"] or None) != (
                r["status"], r["difference"], r["unit"]):
            first, changed_at = p["first_seen_as_of"], as_of
            kinds["changed"].append(item(
                "changed", key, r, first_seen=first, last_seen=as_of,
                previous=(p["status"], _decimal(p["difference"]), p["unit"] or None)))
        else:
            first, changed_at = p["first_seen_as_of"], p["changed_as_of"]
            kinds["digest"].append(item("digest", key, r, first_seen=first, last_seen=as_of))
        snapshot.append({**r, "as_of": as_of, "finding_key": key, "first_seen_as_of": first,
                         "changed_as_of": changed_at, "last_seen_as_of": as_of, "carried": False})
    for key, p in sorted(previous.items()):
        if key in current:
            continue
        r = {k: p[k] for k in (*IDENTITY, "status", "unit")}
        r["difference"] = _decimal(p["difference"])
        if p["check_name"] in errored_checks:
            # not re-checked tonight: still open, as last confirmed
            kinds["digest"].append(item("digest", key, r, first_seen=p["first_seen_as_of"],
                                        last_seen=p["last_seen_as_of"]))
            snapshot.append({**r, "as_of": as_of, "finding_key": key,
                             "first_seen_as_of": p["first_seen_as_of"],
                             "changed_as_of": p["changed_as_of"],
                             "last_seen_as_of": p["last_seen_as_of"], "carried": True})
        else:
            kinds["resolved"].append(item("resolved", key, r, first_seen=p["first_seen_as_of"],
                                          last_seen=p["last_seen_as_of"]))
    return kinds, snapshot


# -- amounts ----------------------------------------------------------------------------------


def currency_exponents(conn: Connection) -> dict[str, int] | None:
    """ISO 4217 exponents from the dbt seed `seeds.currencies`, or None when it is not there."""
    have = conn.fetchone(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        ["seeds", "currencies"])
    if not have or not have[0]:
        return None
    rows = conn.fetchall(
        f"SELECT currency, minor_unit_exponent FROM {qualified('seeds', 'currencies')} "
        "WHERE minor_unit_exponent IS NOT NULL")
    return {str(c).upper(): int(e) for c, e in rows}


def _plain(d: Decimal) -> str:
    if d == d.to_integral_value():
        return f"{d.quantize(Decimal(1)):,}"
    return f"{d.normalize():,f}"


def format_amount(difference: Decimal | None, unit: str | None,
                  exponents: dict[str, int] | None) -> str:
    """A difference with its unit; money (a currency code: minor units) in major units."""
    if difference is None:
        return "difference unknown"
    if not unit:
        return _plain(difference)
    code = unit.upper()
    if exponents is not None and code in exponents:
        exp = exponents[code]
        major = (difference / (Decimal(10) ** exp)).quantize(Decimal(1).scaleb(-exp), ROUND_HALF_EVEN)
        return f"{major:,.{exp}f} {code}"
    if len(unit) == 3 and unit.isalpha() and unit.isupper():
        return f"{_plain(difference)} {unit} minor units"
    return f"{_plain(difference)} {unit}"


def _ts(t: dt.datetime | None) -> str:
    return "?" if t is None else f"{t:%Y-%m-%d %H:%M} UTC"


# -- messages ---------------------------------------------------------------------------------


def _where(i: Item) -> str:
    who = i.fields.get("account_id") or i.fields.get("object_id") or "(no account)"
    label = f"account {who}" if i.fields.get("account_id") else f"object {who}"
    rest = [f"{k} {i.fields[k]}" for k in ("category", "period", "day", "reason") if i.fields.get(k)]
    if i.fields.get("account_id") and i.fields.get("object_id"):
        rest.append(f"object {i.fields['object_id']}")
    return " · ".join([label, *rest])


def _line(i: Item, as_of: dt.datetime, exps: dict[str, int] | None) -> str:
    amount = format_amount(i.difference, i.unit, exps)
    if i.kind == "resolved":
        return (f"{_where(i)}: resolved; was {i.status}, {amount}; open since "
                f"{_ts(i.first_seen)}, last seen {_ts(i.last_seen)}")
    text = f"{_where(i)}: {i.status}, {amount}"
    if i.kind == "changed" and i.previous is not None:
        text += f" (was {i.previous[0]}, {format_amount(i.previous[1], i.previous[2], exps)})"
    text += f", since {_ts(i.first_seen)}"
    if i.last_seen is not None and i.last_seen != as_of:
        text += f", last confirmed {_ts(i.last_seen)} (its check errored tonight)"
    return text


def _by_difference(i: Item) -> tuple:
    return (i.difference is None, -(i.difference or 0), str(i.fields.get("account_id") or ""),
            i.key)


def _group(check: str, items: list[Item], as_of: dt.datetime, top: int,
           exps: dict[str, int] | None) -> str:
    statuses = Counter(i.status for i in items)
    totals: dict[str | None, Decimal] = {}
    for i in items:
        if i.difference is not None:
            totals[i.unit] = totals.get(i.unit, Decimal(0)) + i.difference
    by = "; ".join(format_amount(v, u, exps) for u, v in sorted(totals.items(), key=lambda x: x[0] or ""))
    since = min((i.first_seen for i in items if i.first_seen is not None), default=None)
    n = len(items)
    head = (f"{check}: {n} finding{'s' if n != 1 else ''} "
            f"({', '.join(f'{s} {c}' for s, c in sorted(statuses.items(), key=lambda x: str(x[0])))})")
    if by:
        head += f", {'was ' if items[0].kind == 'resolved' else ''}off by {by} in total"
    head += f", open since {_ts(since)}"
    ranked = sorted(items, key=_by_difference)
    lines = [head, f"  top {min(top, n)} by difference:"]
    lines += [f"  {k}. {_line(i, as_of, exps)}" for k, i in enumerate(ranked[:top], 1)]
    if n > top:
        lines.append(f"  … and {n - top} more")
    lines.append(f"  details: {details_command(check)}")
    return "\n".join(lines)


def compose(kind: str, items: list[Item], as_of: dt.datetime, top: int,
            exps: dict[str, int] | None) -> AlertMessage:
    """One message of one kind over `items` (all of that kind, for one channel)."""
    n = len(items)
    s = "" if n == 1 else "s"
    if kind == "error":
        title = f"[meterline] ERROR: {n} reconciliation check{s} errored, as of {_ts(as_of)}"
        intro = ("A check that errored could not run: this is neither a pass nor a drift, and "
                 "its findings are unknown until it runs again.")
        sections = [
            f"{i.check_name}: status error (the check raised): {i.detail or 'no detail'}\n"
            f"  details: {details_command(i.check_name)}"
            for i in items
        ]
    else:
        if kind == "digest":
            title = (f"[meterline] Daily digest {as_of:%Y-%m-%d}: {n} open reconciliation "
                     f"finding{s} unchanged, as of {_ts(as_of)}")
            intro = "Still open and unchanged since they were alerted:"
        else:
            verb = {"new": "new", "changed": "changed", "resolved": "resolved"}[kind]
            if kind == "new":
                title = f"[meterline] {n} new reconciliation finding{s}, as of {_ts(as_of)}"
            else:
                title = f"[meterline] {n} reconciliation finding{s} {verb}, as of {_ts(as_of)}"
            intro = {
                "new": "Open now, not open at the previous night:",
                "changed": "Still open, with another status or difference than the previous night:",
                "resolved": "Open at the previous night, not any more:",
            }[kind]
        by_check: dict[str, list[Item]] = {}
        for i in items:
            by_check.setdefault(i.check_name, []).append(i)
        sections = [_group(c, its, as_of, top, exps) for c, its in sorted(by_check.items())]
    text = "\n\n".join([title, intro, *sections])
    return AlertMessage(kind, title, text, sections, [i.key for i in items], items)


# -- channels ---------------------------------------------------------------------------------


class _Masker:
    """Replaces every secret (and the secret parts of the webhook URL) with ***."""

    def __init__(self, secrets: Iterable[str]):
        found: set[str] = set()
        for s in secrets:
            if not s:
                continue
            found |= {s, quote(s, safe=""), quote(s)}
            parts = urlsplit(s) if "://" in s else None
            if parts is not None:
                tail = parts.path + (f"?{parts.query}" if parts.query else "")
                if len(tail) >= 8:
                    found.add(tail)
                if parts.password:
                    found.add(parts.password)
        self.secrets = sorted((x for x in found if x), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text


def _reason(exc: BaseException, timeout: float) -> str:
    """One line saying why a send failed (before masking)."""
    if isinstance(exc, urllib.error.HTTPError):
        body = ""
        try:
            body = exc.read(200).decode("utf-8", "replace").strip()
        except Exception:  # noqa: BLE001 - the status says enough
            pass
        return f"HTTP {exc.code} {exc.reason}" + (f": {body}" if body else "")
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return _reason(exc.reason, timeout)
    return failure_reason(exc, timeout)


def _one_line(text: str, mask: _Masker) -> str:
    line = " ".join(mask(text).split())
    return line if len(line) <= 300 else line[:297] + "..."


# A sender gets the messages and calls `done(message, None | reason)` once per message, in order.
Done = Callable[[AlertMessage, "str | None"], None]


class _Webhook:
    name = "slack"

    def __init__(self, url: str, timeout: float, mask: _Masker):
        self.url, self.timeout, self.mask = url, timeout, mask
        parts = urlsplit(url)
        self.valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        self.destination = f"webhook {parts.scheme}://{host}{port}/***"

    def payload(self, m: AlertMessage) -> dict[str, Any]:
        text = _slack_escape(m.text)
        if len(text) > _SLACK_TEXT_MAX:
            text = text[:_SLACK_TEXT_MAX] + "\n… (truncated: run the details command)"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": m.title[:150]}}]
        for section in m.sections[:_SLACK_BLOCKS_MAX - 1]:
            body = _slack_escape(section)
            if len(body) > _SLACK_SECTION_MAX:
                body = body[:_SLACK_SECTION_MAX] + "\n…"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
        return {"text": text, "blocks": blocks}

    def send(self, messages: list[AlertMessage], done: Done) -> None:
        stop: str | None = None if self.valid else "the webhook URL is not an http(s) URL"
        for m in messages:
            if stop is not None:
                done(m, stop)
                continue
            req = urllib.request.Request(
                self.url, data=json.dumps(self.payload(m)).encode(), method="POST",
                headers={"Content-Type": "application/json; charset=utf-8",
                         "User-Agent": "meterline-alerts"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    resp.read(1024)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none raised
                reason = _one_line(f"{self.destination}: {_reason(exc, self.timeout)}", self.mask)
                done(m, reason)
                if not (isinstance(exc, urllib.error.HTTPError) and exc.code < 500):
                    # the endpoint is down: do not wait out the timeout once per message
                    stop = f"not attempted after an earlier failure ({reason})"
                continue
            done(m, None)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Smtp:
    name = "email"

    def __init__(self, cfg: Config, password: str, mask: _Masker):
        self.cfg = cfg
        self.host, self.port, self.timeout = smtp_settings(cfg)
        self.sender = cfg.get("alerts", "smtp_from")
        self.to = [a.strip() for a in cfg.get("alerts", "smtp_to").split(",") if a.strip()]
        self.password, self.mask = password, mask
        self.destination = f"smtp {self.host}:{self.port} to {', '.join(self.to)}"

    def email(self, m: AlertMessage) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = m.title
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["X-Meterline-Alert"] = m.kind
        msg.set_content(m.text)
        return msg

    def send(self, messages: list[AlertMessage], done: Done) -> None:
        def fail_rest(rest: list[AlertMessage], exc: BaseException) -> None:
            reason = _one_line(f"{self.destination}: {_reason(exc, self.timeout)}", self.mask)
            for m in rest:
                done(m, reason)

        try:
            smtp = open_session(self.cfg, self.password)
        except Exception as exc:  # noqa: BLE001 - unreachable, STARTTLS or login failed: nothing sent
            fail_rest(messages, exc)
            return
        try:
            for k, m in enumerate(messages):
                try:
                    smtp.send_message(self.email(m))
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                        smtplib.SMTPDataError) as exc:
                    fail_rest([m], exc)  # this message only: the session is still usable
                    continue
                except Exception as exc:  # noqa: BLE001 - the session is gone
                    fail_rest(messages[k:], exc)
                    return
                done(m, None)
        finally:
            close_session(smtp)


def _channels(cfg: Config, mask: _Masker) -> list[_Webhook | _Smtp]:
    out: list[_Webhook | _Smtp] = []
    url = cfg.secret("alerts", "slack_webhook_url")
    if url:
        out.append(_Webhook(url, float(cfg.get("alerts", "timeout_seconds")), mask))
    if cfg.get("alerts", "smtp_host") and cfg.get("alerts", "smtp_to").strip():
        out.append(_Smtp(cfg, cfg.secret("alerts", "smtp_password"), mask))
    return out


# -- state ------------------------------------------------------------------------------------

_STATE_ARROW = pa.schema([
    ("as_of", pa.timestamp("us")),
    ("finding_key", pa.string()),
    *[(k, pa.string()) for k in IDENTITY],
    ("status", pa.string()),
    ("difference", pa.decimal128(38, 12)),
    ("unit", pa.string()),
    ("first_seen_as_of", pa.timestamp("us")),
    ("changed_as_of", pa.timestamp("us")),
    ("last_seen_as_of", pa.timestamp("us")),
    ("carried", pa.bool_()),
])

_LOG_ARROW = pa.schema([
    ("as_of", pa.timestamp("us")),
    ("alert_date", pa.date32()),
    ("run_seq", pa.int64()),
    ("channel", pa.string()),
    ("kind", pa.string()),
    ("item_key", pa.string()),
    ("check_name", pa.string()),
    ("account_id", pa.string()),
    ("status", pa.string()),
    ("difference", pa.decimal128(38, 12)),
    ("unit", pa.string()),
    ("outcome", pa.string()),
    ("reason", pa.string()),
    ("message_title", pa.string()),
])


def _previous_snapshot(conn: Connection, as_of: dt.datetime) -> dict[str, dict[str, Any]]:
    state = qualified(LEDGER_SCHEMA, "alert_state")
    rows = conn.fetch_dicts(
        f"SELECT * FROM {state} WHERE as_of = (SELECT max(as_of) FROM {state} WHERE as_of < ?)",
        [as_of])
    return {r["finding_key"]: r for r in rows}


def _save_snapshot(conn: Connection, as_of: dt.datetime, snapshot: list[dict[str, Any]]) -> None:
    with conn.transaction():
        conn.execute(f"DELETE FROM {qualified(LEDGER_SCHEMA, 'alert_state')} WHERE as_of = ?", [as_of])
        if snapshot:
            cols = {n: [r[n] for r in snapshot] for n in _STATE_ARROW.names}
            conn.insert_arrow(LEDGER_SCHEMA, "alert_state", pa.table(cols, schema=_STATE_ARROW))


def _already_sent(conn: Connection, channel: str, as_of: dt.datetime) -> tuple[set[tuple[str, str]], bool]:
    """(kind, item) pairs this channel sent for this as_of, and whether today's digest went out."""
    log_t = qualified(LEDGER_SCHEMA, "alert_log")
    sent = {(r[0], r[1]) for r in conn.fetchall(
        f"SELECT DISTINCT kind, item_key FROM {log_t} "
        "WHERE channel = ? AND as_of = ? AND outcome = 'sent'", [channel, as_of])}
    digest = conn.fetchone(
        f"SELECT count(*) FROM {log_t} WHERE channel = ? AND kind = 'digest' AND alert_date = ? "
        "AND outcome = 'sent'", [channel, as_of.date()])
    return sent, bool(digest and digest[0])


def _log(conn: Connection, as_of: dt.datetime, run_seq: int, channel: str, m: AlertMessage,
         reason: str | None) -> None:
    rows = [{
        "as_of": as_of, "alert_date": as_of.date(), "run_seq": run_seq, "channel": channel,
        "kind": m.kind, "item_key": i.key, "check_name": i.check_name,
        "account_id": i.fields.get("account_id"), "status": i.status,
        "difference": i.difference, "unit": i.unit,
        "outcome": "sent" if reason is None else "failed", "reason": reason,
        "message_title": m.title,
    } for i in m.items]
    cols = {n: [r[n] for r in rows] for n in _LOG_ARROW.names}
    with conn.transaction():
        conn.insert_arrow(LEDGER_SCHEMA, "alert_log", pa.table(cols, schema=_LOG_ARROW))


# -- the entry point --------------------------------------------------------------------------


def notify(conn: Connection, cfg: Config, as_of: dt.datetime, findings: list[dict],
           errors: list[dict]) -> AlertReport:
    """Alert engineers about this night's reconciliation (see the module docstring).

    `findings`: dicts with check_name, status, the key fields, difference and unit.
    `errors`: dicts {check_name, detail} of the checks that errored.
    Never raises for a channel that fails: `report.failed` and `report.reasons` say what failed.
    """
    as_of = _naive_utc(as_of)
    mask = _Masker([cfg.secret("alerts", "slack_webhook_url"), cfg.secret("alerts", "smtp_password")])
    top = max(1, int(cfg.get("alerts", "top_offenders")))
    exps = currency_exponents(conn)

    errored = {str(e["check_name"]) for e in errors}
    kinds, snapshot = classify(as_of, findings, _previous_snapshot(conn, as_of), errored)
    _save_snapshot(conn, as_of, snapshot)
    kinds["error"] = [
        Item("error", str(e["check_name"]), str(e["check_name"]), "error",
             detail=mask(" ".join(str(e.get("detail") or "").split())) or None)
        for e in sorted(errors, key=lambda e: str(e["check_name"]))
    ]
    report = AlertReport(as_of, new=len(kinds["new"]), changed=len(kinds["changed"]),
                         digest=len(kinds["digest"]), resolved=len(kinds["resolved"]),
                         errors=len(kinds["error"]))

    channels = _channels(cfg, mask)
    if not channels:
        if any(kinds.values()):
            log.info("alerts as of %s: no alert channel is configured", _ts(as_of))
        return report
    row = conn.fetchone(
        f"SELECT max(run_seq) FROM {qualified(LEDGER_SCHEMA, 'alert_log')} WHERE as_of = ?", [as_of])
    run_seq = int(row[0] or 0) + 1 if row else 1

    for ch in channels:
        rep = report.channels[ch.name] = ChannelReport(ch.name, ch.destination)
        sent, digest_sent = _already_sent(conn, ch.name, as_of)
        messages = []
        for kind in KINDS:
            items = kinds[kind]
            if kind == "digest" and digest_sent:
                rep.already_sent += len(items)
                continue
            if kind != "error":  # errors go out on every run
                todo = [i for i in items if (kind, i.key) not in sent]
                rep.already_sent += len(items) - len(todo)
                items = todo
            if items:
                m = compose(kind, items, as_of, top, exps)
                m.title, m.text = mask(m.title), mask(m.text)
                m.sections = [mask(x) for x in m.sections]
                messages.append(m)

        def done(m: AlertMessage, reason: str | None, ch_name: str = ch.name,
                 rep: ChannelReport = rep) -> None:
            what = f"{m.kind} ({len(m.items)} item{'s' if len(m.items) != 1 else ''})"
            if reason is None:
                rep.sent.append(what)
            else:
                rep.failed.append(f"{what}: {reason}")
                log.warning("alert %s as of %s on %s failed: %s", m.kind, _ts(as_of), ch_name, reason)
            _log(conn, as_of, run_seq, ch_name, m, reason)

        ch.send(messages, done)
        report.messages += [(ch.name, m) for m in messages]
    return report


# -- plain operational messages (appended for the Airflow DAGs' failure callbacks) ------------


def notify_failure(cfg: Config, title: str, text: str,
                   secrets: Iterable[str] = ()) -> dict[str, ChannelReport]:
    """Send one plain message (say "meterline_nightly.load failed") on every configured channel.

    Not a reconciliation alert: no finding, no dedupe, nothing read from or written to the
    warehouse (it may be what failed). The channels' secrets and `secrets` are masked in the
    title and the text. Never raises for a channel that fails: the report says why, per channel.
    """
    mask = _Masker([cfg.secret("alerts", "slack_webhook_url"), cfg.secret("alerts", "smtp_password"),
                    *secrets])
    body = mask(text)
    m = AlertMessage(kind="failure", title=_one_line(title, mask)[:150], text=body, sections=[body],
                     item_keys=[])
    reports: dict[str, ChannelReport] = {}
    for ch in _channels(cfg, mask):
        rep = reports[ch.name] = ChannelReport(ch.name, ch.destination)

        def done(msg: AlertMessage, reason: str | None, rep: ChannelReport = rep) -> None:
            if reason is None:
                rep.sent.append(msg.title)
            else:
                rep.failed.append(f"{msg.title}: {reason}")
                log.warning("failure message on %s failed: %s", rep.channel, reason)

        ch.send([m], done)
    if not reports:
        log.info("no alert channel is configured: %s", m.title)
    return reports
