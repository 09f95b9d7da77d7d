"""A read-only local Stripe API that serves a sample world's `sources/stripe/` folder.

The real `stripe` SDK reads it unchanged::

    with serve_stripe_fixture(out / "sources" / "stripe") as base_url:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": base_url})
        for invoice in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter():
            ...

Endpoints (GET only): `/v1/<resource>` for customers, subscriptions, invoices, charges,
refunds, disputes, credit_notes, balance_transactions, payouts and events with `limit` (1-100,
default 10), `starting_after`, `ending_before`, `created` / `created[gt|gte|lt|lte]`,
`customer` (subscriptions, invoices, charges, credit_notes), `type` (events; `*` is a
wildcard, e.g. `invoice.*`), `types[]` (events, exact names) and `expand[]` (accepted,
ignored); `/v1/<resource>/<id>`; `/v1/invoices/<id>/lines`. Lists are newest first (created
desc, then id desc), as Stripe orders them. Invoices embed their first 10 lines as a list
object (also inside an event's `data.object`); the rest are paged from
`/v1/invoices/<id>/lines` in stored order.
Errors use Stripe's JSON shape (`{"error": {"type", "message", ...}}`): 401 without a
`Bearer sk_...` key, 404 for unknown objects and URLs, 400 for bad parameters.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RESOURCES: dict[str, str] = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "refunds": "refund",
    "disputes": "dispute",
    "credit_notes": "credit_note",
    "balance_transactions": "balance_transaction",
    "payouts": "payout",
    "events": "event",
}
CUSTOMER_FILTER = frozenset({"subscriptions", "invoices", "charges", "credit_notes"})
TYPE_FILTER = frozenset({"events"})
EMBEDDED_LINES = 10


class StripeError(Exception):
    def __init__(
        self, status: int, message: str, *, code: str | None = None, param: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": "invalid_request_error", "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param


class StripeFixture:
    """The objects of one `sources/stripe/` folder, indexed for listing and retrieval."""

    def __init__(self, stripe_dir: Path) -> None:
        self.lists: dict[str, list[dict[str, Any]]] = {}
        self.by_id: dict[str, dict[str, dict[str, Any]]] = {}
        for resource in RESOURCES:
            path = Path(stripe_dir) / f"{resource}.json"
            objects = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
            objects.sort(key=lambda o: (o["created"], o["id"]), reverse=True)
            self.lists[resource] = objects
            self.by_id[resource] = {o["id"]: o for o in objects}

    # --- rendering

    @classmethod
    def render(cls, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        if resource == "events":
            inner = (obj.get("data") or {}).get("object") or {}
            if inner.get("object") != "invoice":
                return obj
            out = dict(obj)
            out["data"] = {**obj["data"], "object": cls.render("invoices", inner)}
            return out
        if resource != "invoices":
            return obj
        out = dict(obj)
        lines = obj.get("lines") or {}
        data = lines.get("data", [])
        out["lines"] = {
            "object": "list",
            "data": copy.deepcopy(data[:EMBEDDED_LINES]),
            "has_more": len(data) > EMBEDDED_LINES,
            "total_count": len(data),
            "url": f"/v1/invoices/{obj['id']}/lines",
        }
        return out

    # --- endpoints

    def list(self, resource: str, query: dict[str, list[str]]) -> dict[str, Any]:
        items = self.lists[resource]
        items = [o for o in items if _created_matches(o["created"], query)]
        if "customer" in query:
            if resource not in CUSTOMER_FILTER:
                raise StripeError(400, "Received unknown parameter: customer", param="customer")
            customer = query["customer"][-1]
            items = [o for o in items if o.get("customer") == customer]
        if "type" in query or "types[]" in query:
            if resource not in TYPE_FILTER:
                name = "type" if "type" in query else "types"
                raise StripeError(400, f"Received unknown parameter: {name}", param=name)
            if "type" in query:
                items = [o for o in items if _type_matches(o["type"], query["type"][-1])]
            if "types[]" in query:
                wanted = set(query["types[]"])
                items = [o for o in items if o["type"] in wanted]
        page, has_more = _page(items, query, resource)
        return {
            "object": "list",
            "url": f"/v1/{resource}",
            "has_more": has_more,
            "data": [self.render(resource, o) for o in page],
        }

    def retrieve(self, resource: str, object_id: str) -> dict[str, Any]:
        obj = self.by_id[resource].get(object_id)
        if obj is None:
            raise StripeError(
                404,
                f"No such {RESOURCES[resource]}: '{object_id}'",
                code="resource_missing",
                param="id",
            )
        return self.render(resource, obj)

    def invoice_lines(self, invoice_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        invoice = self.by_id["invoices"].get(invoice_id)
        if invoice is None:
            raise StripeError(
                404, f"No such invoice: '{invoice_id}'", code="resource_missing", param="invoice"
            )
        lines = (invoice.get("lines") or {}).get("data", [])
        page, has_more = _page(lines, query, "line_item")
        return {
            "object": "list",
            "url": f"/v1/invoices/{invoice_id}/lines",
            "has_more": has_more,
            "data": page,
        }


def _int_param(query: dict[str, list[str]], name: str) -> int:
    raw = query[name][-1]
    try:
        return int(raw)
    except ValueError:
        raise StripeError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name
        ) from None


def _type_matches(event_type: str, pattern: str) -> bool:
    """Stripe's `type` filter: an exact name, or a `*` wildcard such as `invoice.*`."""
    if "*" not in pattern:
        return event_type == pattern
    return fnmatch.fnmatchcase(event_type, pattern)


def _created_matches(created: int, query: dict[str, list[str]]) -> bool:
    if "created" in query and created != _int_param(query, "created"):
        return False
    for op, test in (
        ("gt", lambda a, b: a > b),
        ("gte", lambda a, b: a >= b),
        ("lt", lambda a, b: a < b),
        ("lte", lambda a, b: a <= b),
    ):
        name = f"created[{op}]"
        if name in query and not test(created, _int_param(query, name)):
            return False
    return True


def _page(
    items: list[dict[str, Any]], query: dict[str, list[str]], noun: str
) -> tuple[list[dict[str, Any]], bool]:
    limit = 10
    if "limit" in query:
        limit = _int_param(query, "limit")
        if not 1 <= limit <= 100:
            raise StripeError(
                400,
                "Invalid limit: must be between 1 and 100",
                code="parameter_invalid_integer",
                param="limit",
            )
    after = query.get("starting_after", [None])[-1]
    before = query.get("ending_before", [None])[-1]
    ids = [o["id"] for o in items]
    if after:
        if after not in ids:
            raise StripeError(
                400, f"No such {noun}: '{after}'", code="resource_missing", param="starting_after"
            )
        rest = items[ids.index(after) + 1 :]
        return rest[:limit], len(rest) > limit
    if before:
        if before not in ids:
            raise StripeError(
                400, f"No such {noun}: '{before}'", code="resource_missing", param="ending_before"
            )
        head = items[: ids.index(before)]
        return head[-limit:], len(head) > limit
    return items[:limit], len(items) > limit


class _Handler(BaseHTTPRequestHandler):
    server_version = "meterline-stripe-fixture/1"
    protocol_version = "HTTP/1.1"
    fixture: StripeFixture  # set on the subclass built per server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", "req_fixture")
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        try:
            self._send(200, self._route())
        except StripeError as exc:
            self._send(exc.status, {"error": exc.body})

    def _not_allowed(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._send(
            405 if self._authorized() else 401,
            {"error": {"type": "invalid_request_error", "message": "This fixture is read-only."}}
            if self._authorized()
            else {"error": _auth_error()},
        )

    do_POST = do_DELETE = _not_allowed  # noqa: N815

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer sk_") and len(header) > len("Bearer sk_")

    def _route(self) -> dict[str, Any]:
        if not self._authorized():
            raise StripeError(401, _auth_error()["message"])
        parts = urlsplit(self.path)
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.startswith("expand"):
                continue
            if re.fullmatch(r"types\[\d*\]", key):  # the SDK sends lists as types[0], types[1]
                key = "types[]"
            query.setdefault(key, []).append(value)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) >= 2 and segments[0] == "v1" and segments[1] in RESOURCES:
            resource = segments[1]
            if len(segments) == 2:
                return self.fixture.list(resource, query)
            if len(segments) == 3:
                return self.fixture.retrieve(resource, segments[2])
            if len(segments) == 4 and resource == "invoices" and segments[3] == "lines":
                return self.fixture.invoice_lines(segments[2], query)
        raise StripeError(
            404,
            f"Unrecognized request URL (GET: {parts.path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )


def _auth_error() -> dict[str, Any]:
    return {
        "type": "invalid_request_error",
        "message": "You did not provide an API key. You need to provide your API key in the "
        "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
    }


@contextlib.contextmanager
def serve_stripe_fixture(stripe_dir: Path) -> Iterator[str]:
    """Serve `stripe_dir` as a Stripe API on 127.0.0.1 (a free port); yields the base URL."""
    fixture = StripeFixture(Path(stripe_dir))
    handler = type("FixtureHandler", (_Handler,), {"fixture": fixture})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="stripe-fixture", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
