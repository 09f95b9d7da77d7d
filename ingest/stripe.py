"""Stripe extractor: the real `stripe` SDK against a configurable API base.

Transactional objects (invoices with all their lines, charges, refunds, balance transactions,
payouts) are pulled by `created` in the data interval; customers are pulled as a full snapshot.
The API key is passed to the SDK only; it never appears in messages (they are redacted).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa

from ingest.arrow_types import to_raw_table
from meterline.errors import SourceError

PAGE_LIMIT = 100


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


def customer_row(o: dict[str, Any]) -> dict[str, Any]:
    return {"id": o["id"], "account_id": _meta(o, "account_id"), "email": o.get("email"),
            "created_at": _ts(o.get("created")), "object_json": _json(o)}


def invoice_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "customer_id": _id(o.get("customer")), "account_id": _meta(o, "account_id"),
        "period": _meta(o, "period"), "currency": (o.get("currency") or "").upper() or None,
        "status": o.get("status"), "subtotal": o.get("subtotal"), "total": o.get("total"),
        "amount_paid": o.get("amount_paid"), "created_at": _ts(o.get("created")),
        "object_json": _json(o),
    }


def line_row(invoice_id: str, o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "invoice_id": invoice_id, "category": _line_category(o),
        "quantity": o.get("quantity"), "amount": o.get("amount"),
        "currency": (o.get("currency") or "").upper() or None, "object_json": _json(o),
    }


def charge_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "customer_id": _id(o.get("customer")), "invoice_id": _id(o.get("invoice")),
        "amount": o.get("amount"), "amount_refunded": o.get("amount_refunded"),
        "currency": (o.get("currency") or "").upper() or None, "status": o.get("status"),
        "balance_transaction_id": _id(o.get("balance_transaction")),
        "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


def refund_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "charge_id": _id(o.get("charge")), "amount": o.get("amount"),
        "currency": (o.get("currency") or "").upper() or None, "status": o.get("status"),
        "balance_transaction_id": _id(o.get("balance_transaction")),
        "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


def balance_transaction_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "type": o.get("type"), "source_id": _id(o.get("source")),
        "amount": o.get("amount"), "fee": o.get("fee"), "net": o.get("net"),
        "currency": (o.get("currency") or "").upper() or None,
        "created_at": _ts(o.get("created")), "object_json": _json(o),
    }


def payout_row(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": o["id"], "amount": o.get("amount"),
        "currency": (o.get("currency") or "").upper() or None, "status": o.get("status"),
        "arrival_date": _ts(o.get("arrival_date")), "created_at": _ts(o.get("created")),
        "object_json": _json(o),
    }


def make_client(api_key: str, api_base: str, max_network_retries: int = 3) -> Any:
    import stripe

    if not api_key:
        raise SourceError("stripe source: no API key (set METERLINE_STRIPE_API_KEY)")
    return stripe.StripeClient(
        api_key, base_addresses={"api": api_base}, max_network_retries=max_network_retries
    )


def _redact(message: str, api_key: str) -> str:
    return message.replace(api_key, "sk_***") if api_key else message


def _iterate(lister: Callable[..., Any], params: dict[str, Any]) -> Iterable[dict[str, Any]]:
    created = params.get("created")
    for obj in lister(params=params).auto_paging_iter():
        o = obj.to_dict()
        # Always re-check the interval client-side: objects outside it belong to another batch.
        if created and not (created["gte"] <= int(o.get("created") or 0) < created["lt"]):
            continue
        yield o


def extract_stripe(
    client: Any, day: dt.date, api_key: str = "", with_customers: bool = True,
    server_filters: bool = True,
) -> dict[str, pa.Table]:
    """Stripe objects created in [day, day + 1), all invoice lines, and the customer snapshot.

    With `server_filters` the interval is sent as Stripe's `created[gte]`/`created[lt]` list
    filter; without it (for Stripe stand-ins that lack the filter) every object is listed and
    the interval is applied client-side. Either way the interval is re-checked client-side.
    """
    import stripe

    start = dt.datetime.combine(day, dt.time())
    window = {"gte": _epoch(start), "lt": _epoch(start + dt.timedelta(days=1))}
    v1 = client.v1

    def listing(params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "created": window} if server_filters else params

    def _iterate_window(lister: Callable[..., Any], params: dict[str, Any]) -> Iterable[dict[str, Any]]:
        for o in _iterate(lister, listing(params)):
            if window["gte"] <= int(o.get("created") or 0) < window["lt"]:
                yield o
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        if with_customers:
            out["stripe_customers"] = [customer_row(o) for o in _iterate(v1.customers.list, {"limit": PAGE_LIMIT})]
        invoices, lines = [], []
        for inv in _iterate_window(v1.invoices.list, {"limit": PAGE_LIMIT}):
            invoices.append(invoice_row(inv))
            embedded = inv.get("lines") or {}
            got = list(embedded.get("data") or [])
            if embedded.get("has_more"):
                # Page the invoice's whole line list from its own endpoint (the embedded list
                # is only the first page); de-duplicate by id.
                seen: dict[str, dict[str, Any]] = {li["id"]: li for li in got}
                for line in v1.invoices.line_items.list(
                    inv["id"], params={"limit": PAGE_LIMIT}
                ).auto_paging_iter():
                    seen.setdefault(line["id"], line.to_dict())
                got = list(seen.values())
            lines.extend(line_row(inv["id"], li) for li in got)
        out["stripe_invoices"] = invoices
        out["stripe_invoice_lines"] = lines
        out["stripe_charges"] = [charge_row(o) for o in _iterate_window(v1.charges.list, {"limit": PAGE_LIMIT})]
        out["stripe_refunds"] = [refund_row(o) for o in _iterate_window(v1.refunds.list, {"limit": PAGE_LIMIT})]
        out["stripe_balance_transactions"] = [
            balance_transaction_row(o)
            for o in _iterate_window(v1.balance_transactions.list, {"limit": PAGE_LIMIT})
        ]
        out["stripe_payouts"] = [payout_row(o) for o in _iterate_window(v1.payouts.list, {"limit": PAGE_LIMIT})]
    except stripe.StripeError as exc:
        raise SourceError(f"stripe source: {_redact(str(exc.user_message or exc), api_key)}") from exc
    return {name: to_raw_table(name, rows) for name, rows in out.items()}
