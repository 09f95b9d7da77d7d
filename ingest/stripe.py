"""Stripe extractor: the real `stripe` SDK against a configurable API base.

Night D (the data interval `[D, D + 1)` UTC) is one batch holding

- every object of every resource (customers, subscriptions, invoices with *all* their lines,
  charges, refunds, disputes, credit notes, balance transactions, payouts) **created** in D;
- every event of the Events API created in D whose `data.object` is one of those resources
  (`raw.stripe_events`), and, for each object created *before* D that such an event touched,
  the object version the latest of those events carries (from the event payload, not a fresh
  retrieve: events are immutable, so a rerun of night D gives the same batch, and "as known at
  batch X" stays true). Staging keeps the latest version per id, so the update wins over the
  creation pulled by an earlier night;
- one `raw.stripe_cursor` row per resource and one for `events`: the interval listed, how many
  objects were written, and the newest object seen. The cursor is stamped with the batch, so it
  is replaced with it, in the same transaction.

Each resource (and the events) is listed over `shards` created-time sub-intervals in a thread
pool of `max_concurrency` workers; results are merged and de-duplicated by id, so the result
does not depend on the order the shards finish in. Pages are fetched one call at a time, each
call retried by `call_with_retry` (429, 409, 5xx, connection errors and timeouts; honouring
`Retry-After` (seconds or an HTTP date) and `Stripe-Should-Retry`; exponential backoff with jitter; bounded attempts).
The SDK's own retries are off (it never retries a plain 429 and ignores `Retry-After`).

`extract_stripe_resync` lists every object created in `[since, until)` (no events): the way to
refresh objects whose updates fell outside the Events API's 30-day retention.

The API key is passed to the SDK only; it never appears in log lines or error messages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa

from ingest.arrow_types import to_raw_table
from meterline.errors import SourceError
from meterline.stripe_api import (  # noqa: F401  (re-exported: ingest.stripe's public names)
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS,
    RetryPolicy,
    call_with_retry,
    make_client,
    retry_decision,
)

log = logging.getLogger("meterline.ingest.stripe")

PAGE_LIMIT = 100
EVENTS_RETENTION_DAYS = 30
DEFAULT_SHARDS = 4
DEFAULT_MAX_CONCURRENCY = 4

T = TypeVar("T")


def _ts(epoch: int | None) -> dt.datetime | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).replace(tzinfo=None)


def _epoch(t: dt.datetime) -> int:
    return int(t.replace(tzinfo=dt.UTC).timestamp())


def _id(value: Any) -> str | None:
    """An expandable field is either an id or an object with an id."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("id")
    return str(value)


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _meta(obj: dict[str, Any], key: str) -> str | None:
    meta = obj.get("metadata") or {}
    value = meta.get(key)
    return str(value) if value not in (None, "") else None


def _ccy(obj: dict[str, Any]) -> str | None:
    return (obj.get("currency") or "").upper() or None


def _line_category(line: dict[str, Any]) -> str | None:
    cat = _meta(line, "category")
    if cat:
        return cat
    for holder in ("price", "plan"):
        inner = line.get(holder)
        if isinstance(inner, dict):
            cat = _meta(inner, "category")
            if cat:
                return cat
    return None


# ---------------------------------------------------------------------------------------------
# rows: typed columns plus the full object


def customer_row(o: dict[str, Any]) -> dict[str, Any]:
    return {"id": o["id"], "account_id": _meta(o, "account_id"), "email": o.get("email"),
            "created_at": _ts(o.get("created")), "object_json": _json(o)}


def subscription_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "customer_id": _id(o.get("customer")), "account_id": _meta(o, "account_id"),
        "status": o.get("status"), "currency": _ccy(o),
        "current_period_start": _ts(o.get("current_period_start")),
        "current_period_end": _ts(o.get("current_period_end")),
        "canceled_at": _ts(o.get("canceled_at")), "created_at": _ts(o.get("created")),
        "object_json": _json(o),
    }


def invoice_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "customer_id": _id(o.get("customer")), "account_id": _meta(o, "account_id"),
        "period": _meta(o, "period"), "currency": _ccy(o),
        "status": o.get("status"), "subtotal": o.get("subtotal"), "total": o.get("total"),
        "amount_paid": o.get("amount_paid"), "created_at": _ts(o.get("created")),
        "object_json": _json(o),
    }


def _line_quantity(line: dict[str, Any]) -> Any:
    """The line's usage quantity: metadata `quantity` when meterline pushed the line (an invoice
    item billed by exact amount carries quantity 1 in Stripe), else Stripe's own quantity."""
    meta = _meta(line, "quantity")
    if meta not in (None, ""):
        try:
            return int(str(meta))
        except ValueError:
            pass
    return line.get("quantity")


def line_row(invoice_id: str, o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "invoice_id": invoice_id, "category": _line_category(o),
        "quantity": _line_quantity(o), "amount": o.get("amount"),
        "currency": _ccy(o), "object_json": _json(o),
    }


def charge_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "customer_id": _id(o.get("customer")), "invoice_id": _id(o.get("invoice")),
        "amount": o.get("amount"), "amount_refunded": o.get("amount_refunded"),
        "currency": _ccy(o), "status": o.get("status"),
        "balance_transaction_id": _id(o.get("balance_transaction")),
        "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


def refund_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "charge_id": _id(o.get("charge")), "amount": o.get("amount"),
        "currency": _ccy(o), "status": o.get("status"),
        "balance_transaction_id": _id(o.get("balance_transaction")),
        "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


def dispute_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "charge_id": _id(o.get("charge")), "amount": o.get("amount"),
        "currency": _ccy(o), "status": o.get("status"), "reason": o.get("reason"),
        "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


def credit_note_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "invoice_id": _id(o.get("invoice")), "customer_id": _id(o.get("customer")),
        "amount": o.get("amount"), "currency": _ccy(o), "status": o.get("status"),
        "type": o.get("type"), "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


def balance_transaction_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "type": o.get("type"), "source_id": _id(o.get("source")),
        "amount": o.get("amount"), "fee": o.get("fee"), "net": o.get("net"),
        "currency": _ccy(o), "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


def payout_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "amount": o.get("amount"), "currency": _ccy(o), "status": o.get("status"),
        "arrival_date": _ts(o.get("arrival_date")), "created_at": _ts(o.get("created")),
        "object_json": _json(o),
    }


def event_row(o: dict[str, Any]) -> dict[str, Any]:
    obj = (o.get("data") or {}).get("object") or {}
    return {
        "id": o["id"], "type": o.get("type"), "object_type": obj.get("object"),
        "object_id": obj.get("id"), "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


@dataclass(frozen=True)
class Resource:
    name: str  # API resource: `/v1/<name>` and the SDK's `client.v1.<name>`
    table: str  # raw table
    object_type: str  # the object's `object` field (how an event's data.object is routed)
    row: Callable[[dict[str, Any]], dict[str, Any]]


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("customers", "stripe_customers", "customer", customer_row),
        Resource("subscriptions", "stripe_subscriptions", "subscription", subscription_row),
        Resource("invoices", "stripe_invoices", "invoice", invoice_row),
        Resource("charges", "stripe_charges", "charge", charge_row),
        Resource("refunds", "stripe_refunds", "refund", refund_row),
        Resource("disputes", "stripe_disputes", "dispute", dispute_row),
        Resource("credit_notes", "stripe_credit_notes", "credit_note", credit_note_row),
        Resource("balance_transactions", "stripe_balance_transactions", "balance_transaction",
                 balance_transaction_row),
        Resource("payouts", "stripe_payouts", "payout", payout_row),
    )
}
BY_OBJECT_TYPE: dict[str, Resource] = {r.object_type: r for r in RESOURCES.values()}


# ---------------------------------------------------------------------------------------------
# client, retries: meterline/stripe_api.py (shared with the invoice push)


def shard_windows(gte: int, lt: int, shards: int) -> list[tuple[int, int]]:
    """Split `[gte, lt)` (epoch seconds) into at most `shards` non-empty, adjacent windows."""
    n = max(1, min(shards, lt - gte))
    bounds = [gte + (lt - gte) * i // n for i in range(n + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(n) if bounds[i] < bounds[i + 1]]


def _dedupe(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One object per id, order-independent: on a clash the larger canonical JSON wins."""
    best: dict[str, tuple[str, dict[str, Any]]] = {}
    for o in objects:
        rendered = _json(o)
        held = best.get(o["id"])
        if held is None or rendered > held[0]:
            best[o["id"]] = (rendered, o)
    return [o for _, o in sorted(best.values(), key=lambda v: (int(v[1].get("created") or 0), v[1]["id"]))]


@dataclass
class StripeReader:
    """Lists Stripe resources page by page, with retries and bounded concurrency."""

    client: Any
    api_key: str = ""
    server_filters: bool = True
    shards: int = DEFAULT_SHARDS
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    page_limit: int = PAGE_LIMIT
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def _call(self, fn: Callable[[], T], what: str) -> T:
        return call_with_retry(fn, what, self.retry, self.api_key)

    def _service(self, name: str) -> Any:
        return getattr(self.client.v1, name)

    def list_window(self, name: str, window: tuple[int, int] | None) -> list[dict[str, Any]]:
        """Every object of `/v1/<name>` created in `window` (all of them when None)."""
        lister = self._service(name).list
        params: dict[str, Any] = {"limit": self.page_limit}
        if window is not None and self.server_filters:
            params["created"] = {"gte": window[0], "lt": window[1]}
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page_params = dict(params, **({"starting_after": after} if after else {}))
            page = self._call(lambda p=page_params: lister(params=p),  # type: ignore[misc]
                              f"listing {name}")
            data = [o.to_dict() for o in page.data]
            # Always re-check the window client-side: objects outside it belong to another batch.
            out.extend(o for o in data
                       if window is None or window[0] <= int(o.get("created") or 0) < window[1])
            if not page.has_more or not data:
                return out
            after = data[-1]["id"]

    def invoice_lines(self, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        """All lines of an invoice: the embedded first page, then the rest from its endpoint."""
        embedded = invoice.get("lines") or {}
        got = list(embedded.get("data") or [])
        if "lines" in invoice and not embedded.get("has_more"):
            return got
        seen: dict[str, dict[str, Any]] = {li["id"]: li for li in got}
        service = self.client.v1.invoices.line_items
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_limit}
            if after:
                params["starting_after"] = after
            page = self._call(lambda p=params: service.list(invoice["id"], params=p),  # type: ignore[misc]
                              f"listing the lines of invoice {invoice['id']}")
            data = [li.to_dict() for li in page.data]
            for li in data:
                seen.setdefault(li["id"], li)
            if not page.has_more or not data:
                return list(seen.values())
            after = data[-1]["id"]

    def _run(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        """Run jobs in the bounded pool; results in job order; the first error cancels the rest."""
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=max(1, self.max_concurrency),
                                thread_name_prefix="stripe") as pool:
            futures: list[Future[T]] = [pool.submit(job) for job in jobs]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    def list_sharded(self, names: Sequence[str], gte: int, lt: int) -> dict[str, list[dict[str, Any]]]:
        """Objects of each resource created in `[gte, lt)`, listed shard by shard, merged by id."""
        windows = shard_windows(gte, lt, self.shards) if self.server_filters else [(gte, lt)]
        keys = [(name, w) for name in names for w in windows]
        results = self._run([lambda n=name, w=w: self.list_window(n, w) for name, w in keys])
        merged: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for (name, _), objects in zip(keys, results, strict=True):
            merged[name].extend(objects)
        return {name: _dedupe(objects) for name, objects in merged.items()}

    def lines_of(self, invoices: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        results = self._run([lambda i=inv: self.invoice_lines(i) for inv in invoices])
        rows = [line_row(inv["id"], li) for inv, lines in zip(invoices, results, strict=True)
                for li in lines]
        by_id: dict[str, dict[str, Any]] = {}
        for r in rows:
            by_id.setdefault(r["id"], r)
        return list(by_id.values())


def _newest(objects: Sequence[dict[str, Any]]) -> tuple[dt.datetime | None, str | None]:
    if not objects:
        return None, None
    o = max(objects, key=lambda o: (int(o.get("created") or 0), o["id"]))
    return _ts(o.get("created")), o["id"]


def _tables(
    objects: dict[str, list[dict[str, Any]]], lines: list[dict[str, Any]],
    events: list[dict[str, Any]] | None, listed: dict[str, list[dict[str, Any]]],
    start: dt.datetime, end: dt.datetime, mode: str,
) -> dict[str, pa.Table]:
    out: dict[str, pa.Table] = {}
    cursor = []
    for name, objs in objects.items():
        res = RESOURCES[name]
        out[res.table] = to_raw_table(res.table, [res.row(o) for o in objs])
        newest_at, newest_id = _newest(listed[name])
        cursor.append({"resource": name, "mode": mode, "interval_start": start,
                       "interval_end": end, "objects": len(objs),
                       "newest_created_at": newest_at, "newest_id": newest_id})
    if "invoices" in objects:
        out["stripe_invoice_lines"] = to_raw_table("stripe_invoice_lines", lines)
    if events is not None:
        out["stripe_events"] = to_raw_table("stripe_events", [event_row(e) for e in events])
        newest_at, newest_id = _newest(events)
        cursor.append({"resource": "events", "mode": mode, "interval_start": start,
                       "interval_end": end, "objects": len(events),
                       "newest_created_at": newest_at, "newest_id": newest_id})
    out["stripe_cursor"] = to_raw_table("stripe_cursor", cursor)
    return out


def _resources(resources: Iterable[str] | None) -> list[str]:
    names = list(resources) if resources is not None else list(RESOURCES)
    unknown = [n for n in names if n not in RESOURCES]
    if unknown:
        raise SourceError(f"stripe source: unknown resource(s) {unknown}; known: {sorted(RESOURCES)}")
    return names


def extract_stripe_interval(
    reader: StripeReader, start: dt.datetime, end: dt.datetime,
    resources: Iterable[str] | None = None,
) -> dict[str, pa.Table]:
    """Objects created in `[start, end)`, plus the events of `[start, end)` and the versions of
    older objects they carry. See the module docstring."""
    names = _resources(resources)
    gte, lt = _epoch(start), _epoch(end)
    listed = reader.list_sharded([*names, "events"], gte, lt)
    events_all = listed.pop("events")
    events = [e for e in events_all
              if ((e.get("data") or {}).get("object") or {}).get("object") in BY_OBJECT_TYPE]
    # For each object created before the interval, the version of its latest event here.
    latest: dict[tuple[str, str], tuple[tuple[int, str], dict[str, Any]]] = {}
    for e in events:
        obj = e["data"]["object"]
        res = BY_OBJECT_TYPE[obj["object"]]
        if res.name not in names or not obj.get("id") or obj.get("created") is None:
            continue
        if int(obj["created"]) >= gte:
            continue  # created in this interval: the listing holds its current version
        key = (res.name, obj["id"])
        rank = (int(e.get("created") or 0), e["id"])
        if key not in latest or rank > latest[key][0]:
            latest[key] = (rank, obj)
    objects = {name: list(listed[name]) for name in names}
    for (name, _), (_, obj) in sorted(latest.items()):
        objects[name].append(obj)
    objects = {name: _dedupe(objs) for name, objs in objects.items()}
    lines = reader.lines_of(objects.get("invoices", []))
    return _tables(objects, lines, events, listed, start, end, "nightly")


def extract_stripe_resync(
    reader: StripeReader, since: dt.datetime, until: dt.datetime,
    resources: Iterable[str] | None = None,
) -> dict[str, pa.Table]:
    """The current version of every object created in `[since, until)` (no events)."""
    names = _resources(resources)
    listed = reader.list_sharded(names, _epoch(since), _epoch(until))
    lines = reader.lines_of(listed.get("invoices", []))
    return _tables(listed, lines, None, listed, since, until, "resync")


def extract_stripe(
    client: Any, day: dt.date, api_key: str = "", server_filters: bool = True, *,
    resources: Iterable[str] | None = None, shards: int = DEFAULT_SHARDS,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY, page_limit: int = PAGE_LIMIT,
    retry: RetryPolicy | None = None,
) -> dict[str, pa.Table]:
    """Night `day`: `extract_stripe_interval` over `[day, day + 1)`.

    With `server_filters` the shard windows are sent as Stripe's `created[gte]`/`created[lt]`
    list filter; without it (for Stripe stand-ins that lack the filter) every object is listed
    once, unsharded, and the interval is applied client-side. Either way it is re-checked
    client-side.
    """
    reader = StripeReader(client, api_key, server_filters, shards, max_concurrency, page_limit,
                          retry or RetryPolicy())
    start = dt.datetime.combine(day, dt.time())
    return extract_stripe_interval(reader, start, start + dt.timedelta(days=1), resources)


def reader_from_config(client: Any, api_key: str, sources: dict[str, Any]) -> StripeReader:
    """A reader with the `[sources]` Stripe settings (`stripe_server_filters`, `stripe_shards`,
    `stripe_max_concurrency`, `stripe_max_attempts`, `stripe_page_limit`)."""
    return StripeReader(
        client, api_key,
        server_filters=bool(sources.get("stripe_server_filters", True)),
        shards=int(sources.get("stripe_shards", DEFAULT_SHARDS)),
        max_concurrency=int(sources.get("stripe_max_concurrency", DEFAULT_MAX_CONCURRENCY)),
        page_limit=int(sources.get("stripe_page_limit", PAGE_LIMIT)),
        retry=RetryPolicy(max_attempts=int(sources.get("stripe_max_attempts", DEFAULT_MAX_ATTEMPTS))),
    )


def configured_resources(sources: dict[str, Any]) -> list[str]:
    """`stripe_resources` (comma-separated or a list; empty: all of them)."""
    value = sources.get("stripe_resources") or []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    return _resources(value or None)
