"""Push a closed period's issued invoices to Stripe, replay-safe (DESIGN.md decision 7).

Source of truth: `ledger.issued_invoices` / `ledger.issued_invoice_lines` of a period that was
closed (its invoices issued). Voided invoices and zero-amount lines are not pushed. For each
invoice, in order: the account's Stripe customer (found by metadata `account_id`, created if
missing), one invoice item per non-zero line, the invoice (which takes the customer's pending
items), then (real Stripe) its finalization.

Replay safety:

- every object has a deterministic key (`object_key`): for an invoice item (account, period,
  line, invoice version, hash of the line's content); for the invoice and its finalization
  (account, period, invoice version, hash of all its pushed lines); for the customer (account).
  The key is the Stripe idempotency key of the create call and is written into the object's
  metadata as `meterline_key`;
- `ledger.stripe_outbox` holds one row per object: pending (planned) → sent (a create was
  attempted: written *before* the call) → confirmed (its Stripe id is known). A confirmed row is
  never sent again, so a rerun of a fully pushed period makes no Stripe call at all;
- before any create, and again after every failed create attempt, the customer's invoice items
  and invoices (with their lines) are listed and matched on `meterline_key` client-side, so a
  create whose response was lost after it succeeded (or one older than Stripe's 24-hour
  idempotency retention) is found and confirmed instead of created twice. An invoice whose
  response was lost is also found through its lines (the items it took carry their keys);
- 429, 409, 5xx, timeouts and connection errors are retried with backoff (`Retry-After` and
  `Stripe-Should-Retry` honoured: the read path's `meterline.stripe_api.retry_decision` and
  `RetryPolicy`), with the lookup between attempts. Whatever stays unconfirmed is reported as
  failed, with its error in the outbox; the next run resumes from the outbox.

Guards (a failing guard fails that invoice, nothing else): the ledger total equals the sum of its
lines; every line has the invoice's currency; the customer has no pending invoice item that is
not this invoice's (creating the invoice would sweep it in); the outbox or Stripe holds no other
version of the invoice's content (the ledger changed after it was pushed); the created invoice
holds exactly the expected items and amounts before it is finalized; a Stripe invoice that was
voided in Stripe is never replaced.

Amounts: Stripe amounts are integer minor units like the ledger's (JPY exponent 0, KWD 3),
except ISK, which Stripe keeps as a two-decimal currency (ISO 4217 says 0): ISK is sent × 100.
Three-decimal currencies (BHD, JOD, KWD, OMR, TND) are sent exactly as issued; Stripe's payment
flows need their last digit to be 0, so an invoice total that is not a multiple of 10 is
reported as a warning (never re-rounded here: rounding is a pricing rule, in dbt).

`localstripe=True` adapts to the localstripe stand-in used in development and tests: it drops
invoice metadata given at creation (set afterwards by an update), rejects `currency` and
`auto_advance` on invoice creation, creates an invoice only for a customer with a subscription
(a zero-amount plan and a trialing subscription are created for it: every localstripe invoice
then holds one extra zero-amount subscription line) and has no finalize endpoint (skipped).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from exports.close import is_issued, parse_period
from meterline.config import Config
from meterline.errors import ConfigError, IntervalError, StageError
from meterline.ledger import LEDGER_TABLES
from meterline.stripe_api import (
    DEFAULT_TIMEOUT_SECONDS,
    STRIPE_AMOUNT_FACTOR,
    RetryPolicy,
    make_client,
    retry_decision,
)
from meterline.warehouse import Connection, qualified

log = logging.getLogger("meterline.exports.stripe_push")

OUTBOX = "stripe_outbox"
KINDS = ("customer", "invoice_item", "invoice", "finalize", "void")
PENDING, SENT, CONFIRMED = "pending", "sent", "confirmed"
MAX_KEY_LENGTH = 255  # Stripe's limit for an idempotency key
PAGE_LIMIT = 100
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
LOCALSTRIPE_TRIAL_DAYS = 3650


class PushFailed(StageError):
    """Objects of a Stripe push stayed unconfirmed (exit 3); the outbox holds their errors and a
    rerun resumes them."""


class _Failure(Exception):
    """One invoice (or account) cannot be pushed now; the message says why."""


# ---------------------------------------------------------------------------------------------
# the plan: what Stripe should hold for the period, from the ledger


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _digest(value: Any, length: int = 20) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()[:length]


def _int(value: Any, what: str) -> int:
    """An integer minor-unit amount from the warehouse (int, or an integral Decimal)."""
    if isinstance(value, bool) or value is None:
        raise _Failure(f"{what} is {value!r}, not an integer amount")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise _Failure(f"{what} is {value}, not an integer amount")
        return int(value)
    if not isinstance(value, int):
        raise _Failure(f"{what} is {value!r}, not an integer amount")
    return value


def _bounded(key: str, variable: str) -> str:
    """`key` if Stripe accepts it as an idempotency key, else with `variable` replaced by its
    digest (deterministic either way)."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return key.replace(variable, "h" + _digest(variable, 24))


def stripe_amount(amount_minor: int, currency: str) -> int:
    """The amount Stripe's API expects for `amount_minor` ISO minor units of `currency`."""
    return amount_minor * STRIPE_AMOUNT_FACTOR.get(currency.upper(), 1)


@dataclass(frozen=True)
class ItemPlan:
    key: str
    invoice_line_id: str
    amount_minor: int
    stripe_amount: int
    params: dict[str, Any]  # the create parameters, without the customer
    payload_hash: str


@dataclass
class InvoicePlan:
    invoice_id: str
    account_id: str
    period: str
    version: int
    currency: str
    total_minor: int
    stripe_total: int
    key: str
    finalize_key: str
    items: list[ItemPlan]
    metadata: dict[str, str]
    description: str
    payload_hash: str
    zero_lines: int
    error: str | None = None  # the ledger rows break a guard: nothing of it is pushed


def _item_plan(inv: dict[str, Any], line: dict[str, Any], version: int) -> ItemPlan:
    currency = str(inv["currency"]).upper()
    amount = _int(line["amount_minor"], f"line {line['invoice_line_id']} amount_minor")
    if str(line["currency"]).upper() != currency:
        raise _Failure(f"line {line['invoice_line_id']} is in {line['currency']}, its invoice in {currency}")
    quantity = None if line["quantity"] is None else _int(line["quantity"], f"line {line['invoice_line_id']} quantity")
    content = {k: None if line[k] is None else str(line[k])
               for k in ("invoice_line_id", "invoice_id", "account_id", "period", "service_period", "line_key",
                         "line_type", "category", "currency")}
    content.update(quantity=quantity, amount_minor=amount)
    line_key = str(line["line_key"] or line["invoice_line_id"])
    key = _bounded(f"ml:ii:{inv['account_id']}:{inv['period']}:{line_key}:v{version}:{_digest(content)}", line_key)
    quantity_text = "" if quantity is None else str(quantity)
    metadata = {
        "account_id": str(inv["account_id"]),
        "period": str(inv["period"]),
        "category": str(line["category"]),
        "quantity": quantity_text,
        "line_type": str(line["line_type"]),
        "service_period": str(line["service_period"]),
        "meterline_invoice_id": str(inv["invoice_id"]),
        "meterline_line_id": str(line["invoice_line_id"]),
        "meterline_version": str(version),
        "meterline_key": key,
    }
    params = {
        "amount": stripe_amount(amount, currency),
        "currency": currency.lower(),
        "description": f"{quantity_text or '-'} × {line['category']} ({line['line_type']}, {line['service_period']})",
        "metadata": metadata,
    }
    return ItemPlan(key=key, invoice_line_id=str(line["invoice_line_id"]), amount_minor=amount,
                    stripe_amount=params["amount"], params=params, payload_hash=_digest(params, 64))


def _invoice_plan(inv: dict[str, Any], lines: list[dict[str, Any]]) -> InvoicePlan:
    version = int(inv["version"] or 1)
    currency = str(inv["currency"]).upper()
    items: list[ItemPlan] = []
    zero = 0
    error = None
    total = 0
    try:
        total = _int(inv["total_minor"], f"invoice {inv['invoice_id']} total_minor")
        for line in sorted(lines, key=lambda r: str(r["invoice_line_id"])):
            item = _item_plan(inv, line, version)
            if item.amount_minor == 0:
                zero += 1
            else:
                items.append(item)
        line_sum = sum(i.amount_minor for i in items)
        if line_sum != total:
            raise _Failure(f"invoice {inv['invoice_id']}: total_minor {total} != sum of its lines {line_sum}")
    except _Failure as exc:
        error, items = str(exc), []
    content = {"currency": currency, "total_minor": total, "items": sorted(i.key for i in items)}
    base = f"{inv['account_id']}:{inv['period']}:v{version}:{_digest(content)}"
    metadata = {
        "account_id": str(inv["account_id"]),
        "period": str(inv["period"]),
        "meterline_invoice_id": str(inv["invoice_id"]),
        "meterline_version": str(version),
        "meterline_key": f"ml:in:{base}",
    }
    if inv.get("content_hash"):
        metadata["meterline_content_hash"] = str(inv["content_hash"])[:200]
    description = f"meterline invoice {inv['invoice_id']} ({inv['period']})"
    return InvoicePlan(
        invoice_id=str(inv["invoice_id"]), account_id=str(inv["account_id"]), period=str(inv["period"]),
        version=version, currency=currency, total_minor=total,
        stripe_total=stripe_amount(total, currency), key=f"ml:in:{base}", finalize_key=f"ml:fin:{base}",
        items=items, metadata=metadata, description=description,
        payload_hash=_digest({"metadata": metadata, "description": description, "currency": currency,
                              "items": content["items"]}, 64),
        zero_lines=zero, error=error)


def plan_period(conn: Connection, period: str) -> tuple[list[InvoicePlan], list[dict[str, Any]]]:
    """(what to push: one plan per issued, not voided invoice of `period`; the voided invoices)."""
    ledger = lambda t: qualified("ledger", t)  # noqa: E731
    invoices = conn.fetch_dicts(
        f"SELECT invoice_id, account_id, period, currency, total_minor, version, content_hash, voided_at "
        f"FROM {ledger('issued_invoices')} WHERE period = ? ORDER BY account_id, invoice_id", [period])
    lines: dict[str, list[dict[str, Any]]] = {}
    for line in conn.fetch_dicts(
            f"SELECT invoice_line_id, invoice_id, account_id, period, service_period, line_key, line_type, "
            f"category, currency, quantity, amount_minor FROM {ledger('issued_invoice_lines')} "
            "WHERE period = ? ORDER BY invoice_line_id", [period]):
        lines.setdefault(str(line["invoice_id"]), []).append(line)
    plans = [_invoice_plan(inv, lines.get(str(inv["invoice_id"]), []))
             for inv in invoices if inv["voided_at"] is None]
    return plans, [inv for inv in invoices if inv["voided_at"] is not None]


# ---------------------------------------------------------------------------------------------
# the report


@dataclass
class PushReport:
    """What a push did. `created` and `found_existing` count this run's objects (found: already
    in Stripe, e.g. after a lost response, and confirmed without a create); `confirmed` is every
    object in state confirmed after the run (a rerun of a pushed period: all of them, nothing
    created); `skipped` counts ledger rows not pushed (voided invoices, zero-amount lines,
    invoices without a non-zero line); `failed` counts objects left unconfirmed."""

    period: str
    created: int = 0
    found_existing: int = 0
    confirmed: int = 0
    skipped: int = 0
    failed: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=lambda: {
        k: {"created": 0, "found_existing": 0, "confirmed": 0, "failed": 0} for k in KINDS})
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _count(self, kind: str, outcome: str, n: int = 1) -> None:
        setattr(self, outcome, getattr(self, outcome) + n)
        self.by_kind[kind][outcome] += n


# ---------------------------------------------------------------------------------------------
# Stripe lookups


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _meta(obj: dict[str, Any], key: str) -> str | None:
    value = (obj.get("metadata") or {}).get(key)
    return str(value) if value not in (None, "") else None


def _line_item_id(line: dict[str, Any]) -> str | None:
    """The invoice item behind an invoice line (older API versions: `invoice_item`; newer:
    `parent.invoice_item_details.invoice_item`)."""
    if line.get("invoice_item"):
        return str(line["invoice_item"])
    details = ((line.get("parent") or {}).get("invoice_item_details") or {})
    return str(details["invoice_item"]) if details.get("invoice_item") else None


@dataclass
class _CustomerIndex:
    """What one Stripe customer holds, by `meterline_key`."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {id, invoice, amount, currency}
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # item id -> item (not on an invoice)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> invoice
    invoice_of_item: dict[str, dict[str, Any]] = field(default_factory=dict)  # item key -> invoice
    by_invoice_id: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # meterline id -> invoices

    def add_item(self, item: dict[str, Any]) -> None:
        key = _meta(item, "meterline_key")
        entry = {"id": item["id"], "invoice": item.get("invoice"), "amount": item.get("amount"),
                 "currency": item.get("currency"), "metadata": item.get("metadata") or {}}
        if key:
            self.items[key] = entry
        if not item.get("invoice"):
            self.pending[str(item["id"])] = entry

    def add_invoice(self, inv: dict[str, Any], lines: list[dict[str, Any]] | None) -> None:
        key = _meta(inv, "meterline_key")
        if key:
            self.invoices[key] = inv
        own = _meta(inv, "meterline_invoice_id")
        if own:
            self.by_invoice_id.setdefault(own, []).append(inv)
        for line in lines or []:
            item_key = _meta(line, "meterline_key")
            if not item_key:
                continue
            self.invoice_of_item[item_key] = inv
            self.items.setdefault(item_key, {"id": _line_item_id(line) or line.get("id"), "invoice": inv["id"],
                                             "amount": line.get("amount"), "currency": line.get("currency"),
                                             "metadata": line.get("metadata") or {}})
            for own_id in {_meta(line, "meterline_invoice_id")} - {None, own}:
                self.by_invoice_id.setdefault(str(own_id), []).append(inv)

    def invoice_for(self, plan: InvoicePlan) -> dict[str, Any] | None:
        """The Stripe invoice of `plan`: by its key, or the one holding its items (created, but
        its response and metadata update were lost)."""
        if plan.key in self.invoices:
            return self.invoices[plan.key]
        holding = {self.invoice_of_item[i.key]["id"]: self.invoice_of_item[i.key]
                   for i in plan.items if i.key in self.invoice_of_item}
        if len(holding) > 1:
            raise _Failure(f"the items of {plan.invoice_id} are spread over Stripe invoices {', '.join(sorted(holding))}")
        return next(iter(holding.values()), None)


# ---------------------------------------------------------------------------------------------
# the pusher


_SECRET_RE = re.compile(r"(sk|rk)_(test|live)_[A-Za-z0-9_]+")


class StripePusher:
    """Pushes invoice plans through one Stripe client, recording every step in the outbox."""

    def __init__(self, conn: Connection, client: Any, period: str, *, policy: RetryPolicy | None = None,
                 api_key: str = "", localstripe: bool = False, finalize: bool | None = None) -> None:
        self.conn = conn
        self.client = client
        self.period = period
        self.policy = policy or RetryPolicy()
        self.api_key = api_key
        self.localstripe = localstripe
        self.finalize_invoices = (not localstripe) if finalize is None else finalize
        self.report = PushReport(period)
        conn.ensure_table("ledger", OUTBOX, LEDGER_TABLES[OUTBOX])
        row = conn.fetchone(f"SELECT max(locked_at_interval) FROM {qualified('ledger', 'period_locks')} "
                            "WHERE period = ?", [period])
        self.ledger_as_of = row[0] if row else None
        self.outbox: dict[str, dict[str, Any]] = {
            r["object_key"]: r for r in conn.fetch_dicts(
                f"SELECT * FROM {qualified('ledger', OUTBOX)} WHERE period = ? OR kind IN ('customer', 'void')",
                [period])}
        self.customers: dict[str, str] = {}
        self._customer_list: dict[str, list[dict[str, Any]]] | None = None
        self._indexes: dict[str, _CustomerIndex] = {}
        self._counted_customers: set[str] = set()  # accounts whose customer row is in the counts
        self._new_customers: set[str] = set()  # created by this run: nothing of theirs in Stripe yet
        self._localstripe_ready: set[str] = set()  # localstripe: plans and customers known to be set up
        self._errors: dict[str, str] = {}  # the last failed attempt's error, per key

    # -- outbox ---------------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        return self.policy.clock().astimezone(dt.UTC).replace(tzinfo=None)

    def _row(self, key: str, kind: str, *, account_id: str, invoice_id: str | None = None,
             invoice_line_id: str | None = None, version: int | None = None, currency: str | None = None,
             amount_minor: int | None = None, stripe_amount_: int | None = None,
             payload_hash: str | None = None) -> dict[str, Any]:
        return {"object_key": key, "kind": kind, "account_id": account_id, "period": self.period,
                "invoice_id": invoice_id, "invoice_line_id": invoice_line_id, "invoice_version": version,
                "currency": currency, "amount_minor": amount_minor, "stripe_amount": stripe_amount_,
                "payload_hash": payload_hash, "state": PENDING, "stripe_id": None, "attempts": 0,
                "last_error": None, "ledger_as_of": self.ledger_as_of, "first_sent_at": None,
                "last_sent_at": None, "confirmed_at": None, "confirmed_by": None}

    def _ensure_rows(self, rows: list[dict[str, Any]]) -> None:
        """Insert the rows not in the outbox yet (state pending), in one statement."""
        new = [r for r in rows if r["object_key"] not in self.outbox]
        if not new:
            return
        cols = list(new[0])
        marks = "(" + ", ".join("?" for _ in cols) + ")"
        self.conn.execute(f"INSERT INTO {qualified('ledger', OUTBOX)} ({', '.join(cols)}) VALUES "
                          + ", ".join(marks for _ in new), [r[c] for r in new for c in cols])
        for r in new:
            self.outbox[r["object_key"]] = r

    def _update(self, key: str, **values: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self.conn.execute(f"UPDATE {qualified('ledger', OUTBOX)} SET {sets} WHERE object_key = ?",
                          [*values.values(), key])
        self.outbox[key].update(values)

    def _mark_sent(self, key: str) -> None:
        row = self.outbox[key]
        now = self._now()
        self._update(key, state=SENT, attempts=int(row["attempts"] or 0) + 1,
                     first_sent_at=row["first_sent_at"] or now, last_sent_at=now,
                     last_error=self._errors.pop(key, row["last_error"]))

    def _confirm(self, key: str, stripe_id: str, how: str) -> None:
        """Record the Stripe id; `how` is created | found_existing."""
        self._errors.pop(key, None)
        self._update(key, state=CONFIRMED, stripe_id=stripe_id, last_error=None,
                     confirmed_at=self._now(), confirmed_by=how)
        self.report._count(self.outbox[key]["kind"], how)

    def _confirmed(self, key: str) -> str | None:
        row = self.outbox.get(key)
        return row["stripe_id"] if row and row["state"] == CONFIRMED else None

    # -- calls ----------------------------------------------------------------------------
    def _detail(self, exc: Exception) -> str:
        import stripe

        status = getattr(exc, "http_status", None)
        kind = "timeout or connection error" if isinstance(exc, stripe.APIConnectionError) else (
            f"HTTP {status}" if status else type(exc).__name__)
        message = (getattr(exc, "user_message", None) or str(exc) or type(exc).__name__).splitlines()[0]
        if self.api_key:
            message = message.replace(self.api_key, "sk_***")
        return f"{kind}: {_SECRET_RE.sub('sk_***', message)}"[:500]

    def _fatal(self, exc: Exception) -> None:
        """A rejected API key is the user's to fix, not a failed object: stop the whole push."""
        import stripe

        if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
            raise ConfigError(f"stripe push: Stripe rejected the API key ({self._detail(exc)})") from None

    def _pause(self, attempt: int, retry_after: float | None, what: str, detail: str) -> None:
        delay = (min(retry_after, self.policy.max_retry_after) if retry_after is not None
                 else self.policy.backoff(attempt))
        log.warning("stripe push: %s: %s; retry %d of %d in %.2f s", what, detail, attempt,
                    self.policy.max_attempts - 1, delay)
        self.policy.sleep(delay)

    def _read(self, fn: Callable[[], Any], what: str) -> Any:
        """A call without side effects (a list, a retrieve, a metadata update), retried."""
        import stripe

        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except stripe.StripeError as exc:
                self._fatal(exc)
                retry, retry_after = retry_decision(exc, self.policy.clock())
                detail = self._detail(exc)
                if not retry:
                    raise _Failure(f"{what}: {detail}") from None
                if attempt >= self.policy.max_attempts:
                    raise _Failure(f"{what}: gave up after {attempt} attempts: {detail}") from None
                self._pause(attempt, retry_after, what, detail)

    def _create(self, key: str | None, what: str, create: Callable[[], Any],
                lookup: Callable[[], dict[str, Any] | None]) -> tuple[dict[str, Any], str]:
        """Create one object: (object, created | found_existing). The outbox row (if `key`) is
        `sent` before every attempt; after a failed attempt the object is looked up before any
        retry, so a create that succeeded but whose answer was lost is found, not repeated."""
        import stripe

        attempt = 0
        while True:
            attempt += 1
            if key:
                self._mark_sent(key)
            try:
                return _plain(create()), "created"
            except stripe.StripeError as exc:
                self._fatal(exc)
                retry, retry_after = retry_decision(exc, self.policy.clock())
                detail = self._detail(exc)
                if key:  # written with the next attempt, or by the caller if none follows
                    self._errors[key] = f"{what}: {detail}"
                exhausted = attempt >= self.policy.max_attempts
                if retry and not exhausted:
                    self._pause(attempt, retry_after, what, detail)
                found = lookup()
                if found is not None:
                    log.info("stripe push: %s: found after a failed attempt (%s)", what, detail)
                    return found, "found_existing"
                if not retry:
                    raise _Failure(f"{what}: {detail}") from None
                if exhausted:
                    raise _Failure(f"{what}: gave up after {attempt} attempts: {detail}") from None

    def _list(self, service: Any, what: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page_params = {"limit": PAGE_LIMIT, **params, **({"starting_after": after} if after else {})}
            page = self._read(lambda p=page_params: service.list(params=p), what)  # type: ignore[misc]
            data = [_plain(o) for o in page.data]
            out.extend(data)
            if not page.has_more or not data:
                return out
            after = data[-1]["id"]

    def _invoice_lines(self, inv: dict[str, Any]) -> list[dict[str, Any]]:
        embedded = inv.get("lines") or {}
        if embedded and not embedded.get("has_more"):
            return list(embedded.get("data") or [])
        service = self.client.v1.invoices.line_items
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": PAGE_LIMIT, **({"starting_after": after} if after else {})}
            page = self._read(lambda p=params: service.list(inv["id"], params=p),  # type: ignore[misc]
                              f"listing the lines of Stripe invoice {inv['id']}")
            data = [_plain(li) for li in page.data]
            out.extend(data)
            if not page.has_more or not data:
                return out
            after = data[-1]["id"]

    # -- voids ----------------------------------------------------------------------------
    def void_withdrawn(self) -> list[str]:
        """Void in Stripe every invoice that was pushed and then voided in the ledger (any
        period): a void turns the invoice's charges into adjustments on the next draft, so the
        old Stripe invoice must not stand when the next one is pushed, or the customer is billed
        twice. Each void is an outbox row (kind `void`, key `ml:void:<invoice key>`, the
        idempotency key). Returns what blocks the push: an invoice Stripe has already collected
        (refund or credit it in Stripe first), or a void that did not go through."""
        pushed = self.conn.fetch_dicts(
            f"SELECT o.object_key, o.account_id, o.period, o.invoice_id, o.stripe_id, i.voided_at "
            f"FROM {qualified('ledger', OUTBOX)} o JOIN {qualified('ledger', 'issued_invoices')} i "
            "ON i.invoice_id = o.invoice_id WHERE o.kind = 'invoice' AND o.state = ? "
            "AND i.voided_at IS NOT NULL ORDER BY o.object_key", [CONFIRMED])
        done = {r["object_key"] for r in self.conn.fetch_dicts(
            f"SELECT object_key FROM {qualified('ledger', OUTBOX)} WHERE kind = 'void' AND state = ?",
            [CONFIRMED])}
        blocking: list[str] = []
        for row in pushed:
            key = f"ml:void:{row['object_key']}"[:MAX_KEY_LENGTH]
            if key in done:
                continue
            stripe_id = row["stripe_id"]
            if key not in self.outbox:  # the void row belongs to the voided invoice's period
                saved, self.period = self.period, row["period"]
                try:
                    self._ensure_rows([self._row(key, "void", account_id=row["account_id"],
                                                 invoice_id=row["invoice_id"])])
                finally:
                    self.period = saved
            try:
                inv = _plain(self._read(lambda i=stripe_id: self.client.v1.invoices.retrieve(i),
                                        f"retrieving Stripe invoice {stripe_id}"))
                status = "deleted" if inv.get("deleted") else inv.get("status")
                # Stripe voids open and uncollectible invoices; a draft (never sent) is deleted
                delete = status == "draft"
                if status in ("open", "uncollectible", "draft"):
                    self._mark_sent(key)
                    try:
                        if delete:
                            self._read(lambda i=stripe_id: self.client.v1.invoices.delete(i),
                                       f"deleting draft Stripe invoice {stripe_id}")
                        else:
                            self._read(lambda i=stripe_id, k=key: self.client.v1.invoices.void_invoice(
                                i, options={"idempotency_key": k}), f"voiding Stripe invoice {stripe_id}")
                    except _Failure:  # a lost answer, or done meanwhile: Stripe's status decides
                        pass
                    try:
                        inv = _plain(self._read(lambda i=stripe_id: self.client.v1.invoices.retrieve(i),
                                                f"retrieving Stripe invoice {stripe_id}"))
                    except _Failure as exc:
                        if not (delete and "HTTP 404" in str(exc)):
                            raise
                        inv = {"deleted": True}  # a deleted draft is gone
                    status = "deleted" if inv.get("deleted") else inv.get("status")
                    if status in ("void", "deleted"):
                        self._confirm(key, stripe_id, "created")
                        continue
                    raise _Failure(f"Stripe invoice {stripe_id} is still {status} after the "
                                   f"{'delete' if delete else 'void'}")
                if status in ("void", "deleted"):
                    self._confirm(key, stripe_id, "found_existing")
                    continue
                credited = int(inv.get("post_payment_credit_notes_amount") or 0)
                if status == "paid" and credited >= int(inv.get("total") or 0):
                    self._confirm(key, stripe_id, "found_existing")  # refunded by a credit note
                    continue
                raise _Failure(
                    f"Stripe invoice {stripe_id} is {status}: Stripe has collected it, so it cannot "
                    "be voided; credit it in Stripe (a credit note for its total) and push again")
            except _Failure as exc:
                message = (f"{row['invoice_id']} was voided in the ledger after it was pushed, and "
                           f"its Stripe invoice still stands: {exc}")
                self._update(key, last_error=message[:500])
                self.report.failed += 1
                self.report.errors.append(message)
                blocking.append(message)
        return blocking

    # -- customers ------------------------------------------------------------------------
    def _find_customer(self, account_id: str, refresh: bool) -> dict[str, Any] | None:
        if self._customer_list is None or refresh:
            by_account: dict[str, list[dict[str, Any]]] = {}
            for cus in self._list(self.client.v1.customers, "listing customers"):
                acct = _meta(cus, "account_id")
                if acct:
                    by_account.setdefault(acct, []).append(cus)
            self._customer_list = by_account
        found = self._customer_list.get(account_id, [])
        if len(found) > 1:
            raise _Failure(f"several Stripe customers carry metadata account_id={account_id}: "
                           f"{', '.join(sorted(c['id'] for c in found))}; keep one")
        return found[0] if found else None

    def customer(self, account_id: str) -> str:
        """The Stripe customer of `account_id`: from the outbox, found by metadata, or created."""
        if account_id in self.customers:
            return self.customers[account_id]
        key = f"ml:cus:{account_id}"
        known = self._confirmed(key)
        if known:
            self.customers[account_id] = known
            return known
        params = {"metadata": {"account_id": account_id, "meterline_key": key},
                  "description": f"meterline account {account_id}"}
        self._ensure_rows([self._row(key, "customer", account_id=account_id, payload_hash=_digest(params, 64))])
        found = self._find_customer(account_id, refresh=False)
        if found is not None:
            obj, how = found, "found_existing"
        else:
            obj, how = self._create(
                key, f"creating the customer of {account_id}",
                lambda: self.client.v1.customers.create(params=params, options={"idempotency_key": key}),
                lambda: self._find_customer(account_id, refresh=True))
            if how == "created" and self._customer_list is not None:
                self._customer_list.setdefault(account_id, []).append(obj)
        self._confirm(key, obj["id"], how)
        self.customers[account_id] = obj["id"]
        if how == "created":  # nothing can be in Stripe for it yet: no lookups needed
            self._indexes[obj["id"]] = _CustomerIndex()
            self._new_customers.add(obj["id"])
        return obj["id"]

    def _index(self, customer_id: str, refresh: bool = False) -> _CustomerIndex:
        """The customer's invoice items and the invoices that may be this period's, by key."""
        if customer_id in self._indexes and not refresh:
            return self._indexes[customer_id]
        idx = _CustomerIndex()
        for item in self._list(self.client.v1.invoice_items, f"listing the invoice items of {customer_id}",
                               customer=customer_id):
            idx.add_item(item)
        for inv in self._list(self.client.v1.invoices, f"listing the invoices of {customer_id}",
                              customer=customer_id):
            # lines only where this period's items can be: its invoices, and any without our key
            # (created by a push whose metadata update was lost)
            mine = _meta(inv, "period") == self.period or not _meta(inv, "meterline_key")
            idx.add_invoice(inv, self._invoice_lines(inv) if mine else None)
        self._indexes[customer_id] = idx
        return idx

    # -- one invoice ----------------------------------------------------------------------
    def _rows_of(self, plan: InvoicePlan) -> list[str]:
        """Ensure the outbox rows of the invoice's objects (pending); their keys."""
        rows = [self._row(item.key, "invoice_item", account_id=plan.account_id, invoice_id=plan.invoice_id,
                          invoice_line_id=item.invoice_line_id, version=plan.version, currency=plan.currency,
                          amount_minor=item.amount_minor, stripe_amount_=item.stripe_amount,
                          payload_hash=item.payload_hash)
                for item in plan.items]
        rows.append(self._row(plan.key, "invoice", payload_hash=plan.payload_hash, **self._common(plan)))
        if self.finalize_invoices:
            rows.append(self._finalize_row(plan))
        self._ensure_rows(rows)
        return [r["object_key"] for r in rows]

    def _common(self, plan: InvoicePlan) -> dict[str, Any]:
        return {"account_id": plan.account_id, "invoice_id": plan.invoice_id, "version": plan.version,
                "currency": plan.currency, "amount_minor": plan.total_minor, "stripe_amount_": plan.stripe_total}

    def _finalize_row(self, plan: InvoicePlan) -> dict[str, Any]:
        return self._row(plan.finalize_key, "finalize", payload_hash=_digest({"finalize": plan.key}, 64),
                         **self._common(plan))

    def _check_versions(self, plan: InvoicePlan, idx: _CustomerIndex | None) -> None:
        """Refuse to push content that differs from what was already pushed for this invoice."""
        expected = {i.key for i in plan.items} | {plan.key, plan.finalize_key}
        stale = sorted(k for k, r in self.outbox.items()
                       if r["invoice_id"] == plan.invoice_id and r["state"] != PENDING and k not in expected)
        if idx is not None:
            stale += sorted(k for k, it in idx.items.items()
                            if it["metadata"].get("meterline_invoice_id") == plan.invoice_id and k not in expected)
            stale += sorted(_meta(inv, "meterline_key") or inv["id"] for inv in idx.by_invoice_id.get(plan.invoice_id, [])
                            if _meta(inv, "meterline_key") not in (None, plan.key))
        if stale:
            raise _Failure(f"{plan.invoice_id}: Stripe or the outbox already hold other content of this invoice "
                           f"({', '.join(sorted(set(stale))[:3])}); the ledger changed after it was pushed")

    def push_invoice(self, plan: InvoicePlan) -> None:
        res = self.report.invoices.setdefault(plan.invoice_id, {
            "account_id": plan.account_id, "currency": plan.currency, "total_minor": plan.total_minor,
            "stripe_customer_id": None, "stripe_invoice_id": None, "stripe_invoice_items": {},
            "finalized": False, "state": None, "error": None})
        self.report.skipped += plan.zero_lines
        if plan.error:
            res.update(state="failed", error=plan.error)
            self.report.errors.append(plan.error)
            self.report._count("invoice", "failed")
            return
        if not plan.items:
            res["state"] = "skipped"
            self.report.skipped += 1
            self.report.warnings.append(f"{plan.invoice_id}: no non-zero line, nothing pushed")
            return
        if plan.currency in THREE_DECIMAL and plan.stripe_total % 10:
            self.report.warnings.append(
                f"{plan.invoice_id}: {plan.currency} total {plan.stripe_total} does not end in 0; Stripe's "
                "payment flows need three-decimal amounts rounded to 10 (pushed as issued)")
        keys = self._rows_of(plan)
        customer_key = f"ml:cus:{plan.account_id}"
        try:
            self._check_versions(plan, None)
            if not all(self._confirmed(k) for k in keys):
                self._push(plan, res)
            res["state"] = "confirmed"
        except _Failure as exc:
            res.update(state="failed", error=str(exc))
            self.report.errors.append(str(exc))
            for key in [*keys, customer_key]:
                if key in self.outbox and self.outbox[key]["state"] != CONFIRMED:
                    self._errors.pop(key, None)
                    self._update(key, last_error=str(exc)[:1000])
        if plan.account_id not in self._counted_customers and customer_key in self.outbox:
            self._counted_customers.add(plan.account_id)
            keys.append(customer_key)
        for key in keys:
            row = self.outbox[key]
            if row["state"] == CONFIRMED:
                self.report.confirmed += 1
                self.report.by_kind[row["kind"]]["confirmed"] += 1
            else:
                self.report._count(row["kind"], "failed")
        res["stripe_customer_id"] = self.customers.get(plan.account_id) or self._confirmed(customer_key)
        res["stripe_invoice_id"] = self._confirmed(plan.key)
        res["stripe_invoice_items"] = {i.invoice_line_id: self._confirmed(i.key) for i in plan.items}
        res["finalized"] = bool(self.finalize_invoices and self._confirmed(plan.finalize_key))

    def _push(self, plan: InvoicePlan, res: dict[str, Any]) -> None:
        customer = self.customer(plan.account_id)
        res["stripe_customer_id"] = customer
        idx = self._index(customer)
        self._check_versions(plan, idx)
        invoice = None
        if not self._confirmed(plan.key):
            invoice = idx.invoice_for(plan)
        for item in plan.items:
            if self._confirmed(item.key):
                continue
            found = idx.items.get(item.key)
            if found is not None:
                self._check_item(item, found)
                self._confirm(item.key, str(found["id"]), "found_existing")
                continue
            if invoice is not None:
                raise _Failure(f"{plan.invoice_id}: Stripe invoice {invoice['id']} exists without line "
                               f"{item.invoice_line_id}")
            params = {**item.params, "customer": customer}
            obj, how = self._create(
                item.key, f"creating the invoice item of {item.invoice_line_id}",
                lambda p=params, k=item.key: self.client.v1.invoice_items.create(  # type: ignore[misc]
                    params=p, options={"idempotency_key": k}),
                lambda k=item.key: self._index(customer, refresh=True).items.get(k))  # type: ignore[misc]
            self._check_item(item, obj)
            idx = self._indexes[customer]
            if how == "created":
                idx.add_item(obj)
            self._confirm(item.key, str(obj["id"]), how)
        stripe_invoice_id = self._confirmed(plan.key)
        if stripe_invoice_id is None:
            invoice = self._invoice(plan, customer)
            stripe_invoice_id = invoice["id"]
        if self.finalize_invoices and not self._confirmed(plan.finalize_key):
            if invoice is None:
                invoice = _plain(self._read(lambda: self.client.v1.invoices.retrieve(stripe_invoice_id),
                                            f"retrieving Stripe invoice {stripe_invoice_id}"))
            self.finalize(plan, invoice)

    def _check_item(self, item: ItemPlan, found: dict[str, Any]) -> None:
        amount, currency = found.get("amount"), str(found.get("currency") or "").lower()
        if amount != item.stripe_amount or currency != item.params["currency"]:
            raise _Failure(f"Stripe invoice item {found.get('id')} for {item.invoice_line_id} holds {amount} "
                           f"{currency}, expected {item.stripe_amount} {item.params['currency']}")

    def _invoice(self, plan: InvoicePlan, customer: str) -> dict[str, Any]:
        """Find or create the Stripe invoice of `plan` (its items exist), check it, confirm it."""
        idx = self._indexes[customer]
        invoice = idx.invoice_for(plan)
        how = "found_existing"
        if invoice is None:
            ours = {self._confirmed(i.key) for i in plan.items}
            foreign = sorted(set(idx.pending) - ours)
            if foreign:
                raise _Failure(f"{plan.invoice_id}: customer {customer} has pending invoice items that are not "
                               f"this invoice's ({', '.join(foreign[:5])}); creating the invoice would take them")
            missing = sorted(i.invoice_line_id for i in plan.items if self._confirmed(i.key) not in idx.pending)
            if missing:
                raise _Failure(f"{plan.invoice_id}: the invoice items of {', '.join(missing[:5])} are no longer "
                               "pending in Stripe (deleted?)")
            if self.localstripe:
                self._localstripe_subscription(customer, plan.currency.lower())
            params: dict[str, Any] = {"customer": customer, "description": plan.description,
                                      "metadata": plan.metadata, "pending_invoice_items_behavior": "include"}
            if not self.localstripe:
                params.update(currency=plan.currency.lower(), auto_advance=False)
            invoice, how = self._create(
                plan.key, f"creating the invoice of {plan.invoice_id}",
                lambda: self.client.v1.invoices.create(params=params, options={"idempotency_key": plan.key}),
                lambda: self._index(customer, refresh=True).invoice_for(plan))
        if invoice.get("status") == "void":
            raise _Failure(f"{plan.invoice_id}: its Stripe invoice {invoice['id']} was voided in Stripe; "
                           "not pushed again")
        if any(invoice.get("metadata", {}).get(k) != v for k, v in plan.metadata.items()):
            metadata = plan.metadata
            invoice = _plain(self._read(
                lambda: self.client.v1.invoices.update(invoice["id"], params={"metadata": metadata}),
                f"setting the metadata of Stripe invoice {invoice['id']}"))
        self._check_invoice(plan, invoice)
        self._confirm(plan.key, invoice["id"], how)
        return invoice

    def _check_invoice(self, plan: InvoicePlan, invoice: dict[str, Any]) -> None:
        """The Stripe invoice holds exactly the plan's items and amounts."""
        lines = self._invoice_lines(invoice)
        ours = {_meta(li, "meterline_key"): li for li in lines if _meta(li, "meterline_key")}
        expected = {i.key: i for i in plan.items}
        others = [li for li in lines if not _meta(li, "meterline_key")]
        if self.localstripe:  # its stand-in subscription adds one zero-amount line
            others = [li for li in others if not (li.get("type") == "subscription" and li.get("amount") == 0)]
        problems = []
        if set(ours) != set(expected):
            problems.append(f"{len(set(expected) - set(ours))} item(s) missing, "
                            f"{len(set(ours) - set(expected))} unexpected")
        if others:
            problems.append(f"{len(others)} line(s) not pushed by meterline ({', '.join(str(li.get('id')) for li in others[:3])})")
        total = sum(int(li.get("amount") or 0) for li in ours.values())
        if total != plan.stripe_total:
            problems.append(f"its meterline lines sum to {total}, expected {plan.stripe_total}")
        if str(invoice.get("currency") or "").lower() != plan.currency.lower():
            problems.append(f"currency {invoice.get('currency')}, expected {plan.currency.lower()}")
        if problems:
            raise _Failure(f"{plan.invoice_id}: Stripe invoice {invoice['id']} does not match the ledger: "
                           + "; ".join(problems))

    def finalize(self, plan: InvoicePlan, invoice: dict[str, Any]) -> str:
        """Finalize the Stripe invoice `invoice` of `plan` (once): POST /v1/invoices/{id}/finalize
        with the finalize key as idempotency key; an invoice no longer in draft counts as done."""
        key = plan.finalize_key
        self._ensure_rows([self._finalize_row(plan)])
        if self._confirmed(key):
            return str(self._confirmed(key))
        invoice_id = str(invoice["id"])
        if invoice.get("status") not in (None, "draft"):
            self._confirm(key, invoice_id, "found_existing")
            return invoice_id

        def lookup() -> dict[str, Any] | None:
            now = _plain(self._read(lambda: self.client.v1.invoices.retrieve(invoice_id),
                                    f"retrieving Stripe invoice {invoice_id}"))
            return now if now.get("status") not in (None, "draft") else None

        _, how = self._create(key, f"finalizing Stripe invoice {invoice_id} ({plan.invoice_id})",
                              lambda: self.client.v1.invoices.finalize_invoice(
                                  invoice_id, params={"auto_advance": True}, options={"idempotency_key": key}),
                              lookup)
        self._confirm(key, invoice_id, how)
        return invoice_id

    def _localstripe_subscription(self, customer: str, currency: str) -> None:
        """localstripe only: it invoices only customers with a subscription. A zero-amount plan
        per currency and a trialing subscription (no invoice of its own) stand in."""
        if customer in self._localstripe_ready:
            return
        subs = [] if customer in self._new_customers else self._list(
            self.client.v1.subscriptions, f"listing the subscriptions of {customer}", customer=customer)
        if subs:
            have = str((subs[0].get("plan") or {}).get("currency") or "").lower()
            if have != currency:
                raise _Failure(f"localstripe: customer {customer}'s stand-in subscription is in {have}, "
                               f"the invoice in {currency}")
            self._localstripe_ready.add(customer)
            return
        plan_id = f"meterline-localstripe-{currency}"

        def plan_exists() -> dict[str, Any] | None:
            import stripe

            def retrieve() -> dict[str, Any] | None:
                try:
                    return _plain(self.client.v1.plans.retrieve(plan_id))
                except stripe.InvalidRequestError as exc:
                    if getattr(exc, "http_status", None) == 404:
                        return None
                    raise

            return self._read(retrieve, f"retrieving localstripe plan {plan_id}")

        if plan_id not in self._localstripe_ready and plan_exists() is None:
            self._create(None, f"creating localstripe plan {plan_id}",
                         lambda: self.client.v1.plans.create(params={
                             "id": plan_id, "amount": 0, "currency": currency, "interval": "month",
                             "product": {"name": "meterline (localstripe stand-in)"}}),
                         plan_exists)

        def sub_exists() -> dict[str, Any] | None:
            found = self._list(self.client.v1.subscriptions, f"listing the subscriptions of {customer}",
                               customer=customer)
            return found[0] if found else None

        self._localstripe_ready.add(plan_id)
        self._create(None, f"creating the localstripe subscription of {customer}",
                     lambda: self.client.v1.subscriptions.create(params={
                         "customer": customer, "items": [{"plan": plan_id}],
                         "trial_period_days": LOCALSTRIPE_TRIAL_DAYS}),
                     sub_exists)
        self._localstripe_ready.add(customer)


# ---------------------------------------------------------------------------------------------
# entry points


def push_period(conn: Connection, cfg: Config, period: str, *, api_base: str | None = None,
                api_key: str | None = None, max_attempts: int | None = None, localstripe: bool = False,
                finalize: bool | None = None, retry: RetryPolicy | None = None,
                timeout: float | None = None, client: Any = None) -> PushReport:
    """Push the issued, not voided invoices of the closed `period` to Stripe; see the module doc.

    `api_base`/`api_key` default to `[sources] stripe_api_base` and METERLINE_STRIPE_API_KEY;
    `max_attempts` to `[sources] stripe_max_attempts` (per call); `finalize` to
    `not localstripe`. Raises a MeterlineError (exit 2) for a bad or unclosed period or a missing
    or rejected key; objects that stay unconfirmed are counted in `failed` (not raised)."""
    parse_period(period)
    if not is_issued(conn, period):
        raise IntervalError(f"cannot push {period}: it is not closed, its invoices are not issued "
                            f"(meterline close --period {period})")
    key = api_key if api_key is not None else cfg.stripe_api_key
    if not key:
        raise ConfigError("stripe push: no Stripe API key (set METERLINE_STRIPE_API_KEY)")
    base = api_base or cfg.get("sources", "stripe_api_base")
    if localstripe and (key.startswith(("sk_live_", "rk_live_")) or "stripe.com" in base.lower()):
        # localstripe mode skips finalize and adds a stand-in plan and subscription per customer:
        # never against the real Stripe
        raise ConfigError(f"stripe push: localstripe mode is for the localstripe stand-in, not {base} "
                          "with a live key; drop --localstripe (or the Airflow variable meterline_localstripe)")
    if retry is None:
        retry = RetryPolicy(max_attempts=int(cfg.get("sources", "stripe_max_attempts")))
    policy = dataclasses.replace(retry, max_attempts=int(max_attempts)) if max_attempts else retry
    if client is None:
        client = make_client(key, base,
                             timeout=timeout or float(cfg.get("sources", "stripe_timeout_seconds") or DEFAULT_TIMEOUT_SECONDS))
    pusher = StripePusher(conn, client, period, policy=policy, api_key=key, localstripe=localstripe,
                          finalize=finalize)
    plans, voided = plan_period(conn, period)
    report = pusher.report
    report.skipped += len(voided)
    if pusher.void_withdrawn():
        # the voided invoices' charges are re-billed on later invoices: pushing anything while
        # an old Stripe invoice still stands could bill the same charges twice
        log.error("stripe push %s: nothing pushed: %s", period, "; ".join(report.errors))
        return report
    for plan in plans:
        pusher.push_invoice(plan)
    log.info("stripe push %s: %d created, %d found, %d confirmed, %d skipped, %d failed", period,
             report.created, report.found_existing, report.confirmed, report.skipped, report.failed)
    return report


def push_from_config(cfg: Config, period: str, *, localstripe: bool = False) -> PushReport:
    """`meterline push`: open the configured warehouse (creating the ledger tables if missing)
    and push `period`."""
    from meterline.ledger import ensure_ledger
    from meterline.warehouse import connect

    parse_period(period)
    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_ledger(conn)
        return push_period(conn, cfg, period, localstripe=localstripe)
