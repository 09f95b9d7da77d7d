"""Test doubles for the Stripe push (tests/exports/test_stripe_push.py).

- `FaultProxy`: forwards GET and POST to an upstream Stripe stand-in (localstripe). A seeded share
  of requests fails *before* forwarding (500, 429 with Retry-After, a stall past the client's
  timeout: nothing reaches Stripe) or *after* it (forwarded, the object is created, then the
  answer is replaced by a 500 or the connection is closed without one: a response lost after
  success). `script` picks faults for given requests instead of the dice.
- `FinalizeStub`: the two endpoints the finalize step touches, POST /v1/invoices/{id}/finalize
  (localstripe has none) and GET /v1/invoices/{id} (asked only after a failed finalize), with
  Stripe's idempotency: a repeated key replays the stored answer.
- `build_ledger`: a tmp DuckDB warehouse with issued invoices written straight into the ledger.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

BEFORE = ("500", "429", "stall")  # never reaches Stripe
AFTER = ("lost_500", "lost_drop")  # reaches Stripe; the answer is lost
KINDS = ("ok", *BEFORE, *AFTER)


def serve(handler: type[BaseHTTPRequestHandler], threaded: bool = True) -> tuple[HTTPServer, str]:
    """Serve `handler` on a free port. Not `threaded`: one request at a time, in arrival order."""
    if threaded:
        server: HTTPServer = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True  # type: ignore[attr-defined]
    else:
        server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"


def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    if h.close_connection:
        h.send_header("Connection", "close")
    for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _error(message: str, type_: str = "api_error", code: str | None = None) -> bytes:
    return json.dumps({"error": {"type": type_, "message": message, **({"code": code} if code else {})}}).encode()


@dataclass
class FaultProxy:
    """Seeded faults in front of `upstream`: `rate` of the requests fail, spread over `weights`.

    It serves one request at a time, in arrival order, one connection per request: a request
    the client gave up on (timeout) is still handled before the next one, as Stripe would have
    handled it, so a lookup after a timeout sees what the timed-out create did."""

    upstream: str
    seed: int = 0
    rate: float = 0.0
    stall: float = 0.6
    weights: dict[str, float] = field(default_factory=lambda: {
        "500": 0.3, "429": 0.15, "stall": 0.1, "lost_500": 0.3, "lost_drop": 0.15})
    script: Callable[[str, str, int], str | None] | None = None  # (method, path, n-th of it) -> kind
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    post_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, kind)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()
        self.seen: dict[tuple[str, str], int] = {}

    def _kind(self, method: str, path: str) -> str:
        with self.lock:
            route = re.sub(r"/(cus|ii|in|sub|il|plan)_[A-Za-z0-9]+", r"/{\1}", path.split("?")[0])
            n = self.seen[(method, route)] = self.seen.get((method, route), 0) + 1
            kind = self.script(method, route, n) if self.script else None
            draw = self.rng.random()
            if kind is None:
                kind = "ok"
                if draw < self.rate:
                    pick, acc = draw / self.rate * sum(self.weights.values()), 0.0
                    for name, w in self.weights.items():
                        acc += w
                        if pick < acc:
                            kind = name
                            break
            self.counts[kind] += 1
            if method == "POST":
                self.post_counts[kind] += 1
            self.requests.append((method, route, kind))
            return kind

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms ACK wait)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _forward(self, method: str, body: bytes | None) -> tuple[int, bytes]:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type", "idempotency-key", "stripe-version")}
                req = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers, method=method)
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        return resp.status, resp.read()
                except urllib.error.HTTPError as err:
                    return err.code, err.read()

            def _handle(self, method: str) -> None:
                self.close_connection = True  # one request per connection (see the class doc)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                kind = proxy._kind(method, self.path)
                if kind == "500":
                    _reply(self, 500, _error("Something went wrong."))
                elif kind == "429":
                    _reply(self, 429, _error("Too many requests.", "invalid_request_error", "rate_limit"),
                           {"Retry-After": "1"})
                elif kind == "stall":
                    time.sleep(proxy.stall)
                else:
                    status, payload = self._forward(method, body)
                    if kind == "lost_500":
                        _reply(self, 500, _error("Something went wrong after the request was handled."))
                    elif kind == "lost_drop":
                        pass  # no answer at all: the connection is closed
                    else:
                        _reply(self, status, payload)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._handle("DELETE")

        return Handler


@contextlib.contextmanager
def fault_proxy(upstream: str, **kwargs: Any) -> Iterator[tuple[FaultProxy, str]]:
    proxy = FaultProxy(upstream, **kwargs)
    server, url = serve(proxy.handler(), threaded=False)
    try:
        yield proxy, url
    finally:
        server.shutdown()
        server.server_close()


class FinalizeStub:
    """POST /v1/invoices/{id}/finalize and GET /v1/invoices/{id} for invoices in `statuses`.

    `post_script` answers the n-th POST: "ok" (finalize, 200), "lost" (finalize, then a 500),
    "503" (nothing done, 503), "400" (nothing done, invoice_unexpected_state)."""

    def __init__(self, statuses: dict[str, str], post_script: list[str] | None = None) -> None:
        self.statuses = dict(statuses)
        self.post_script = list(post_script or [])
        self.posts: list[tuple[str, str | None, bytes]] = []  # (invoice id, idempotency key, body)
        self.gets: list[str] = []
        self.finalized: list[str] = []
        self.replayed: dict[str, tuple[int, bytes]] = {}
        self.lock = threading.Lock()

    def _invoice(self, inv: str) -> bytes:
        return json.dumps({"id": inv, "object": "invoice", "status": self.statuses[inv]}).encode()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms ACK wait)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802
                m = re.fullmatch(r"/v1/invoices/([A-Za-z0-9_]+)", self.path.split("?")[0])
                with stub.lock:
                    if not m or m.group(1) not in stub.statuses:
                        _reply(self, 404, _error("No such invoice", "invalid_request_error"))
                        return
                    stub.gets.append(m.group(1))
                    _reply(self, 200, stub._invoice(m.group(1)))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                m = re.fullmatch(r"/v1/invoices/([A-Za-z0-9_]+)/finalize", self.path.split("?")[0])
                with stub.lock:
                    if not m or m.group(1) not in stub.statuses:
                        _reply(self, 404, _error("Unrecognized request URL", "invalid_request_error"))
                        return
                    inv, key = m.group(1), self.headers.get("Idempotency-Key")
                    stub.posts.append((inv, key, body))
                    if key and key in stub.replayed:  # Stripe replays what the key first got
                        _reply(self, *stub.replayed[key])
                        return
                    action = stub.post_script.pop(0) if stub.post_script else "ok"
                    if action == "503":
                        _reply(self, 503, _error("Service unavailable."))
                        return
                    if action == "400" or stub.statuses[inv] != "draft":
                        _reply(self, 400, _error("This invoice is already finalized.", "invalid_request_error",
                                                 "invoice_unexpected_state"))
                        return
                    stub.statuses[inv] = "open"
                    stub.finalized.append(inv)
                    answer = (200, stub._invoice(inv))
                    if key:
                        stub.replayed[key] = answer
                    if action == "lost":
                        _reply(self, 500, _error("Something went wrong after the request was handled."))
                    else:
                        _reply(self, *answer)

        return Handler


@contextlib.contextmanager
def finalize_stub(statuses: dict[str, str], post_script: list[str] | None = None) -> Iterator[tuple[FinalizeStub, str]]:
    stub = FinalizeStub(statuses, post_script)
    server, url = serve(stub.handler())
    try:
        yield stub, url
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def invoice_stub(invoices: dict[str, dict[str, Any]]) -> Iterator[tuple[Any, str]]:
    """A stand-in for Stripe's invoice retrieve and void only: GET /v1/invoices/{id} answers the
    (live) dict in `invoices`, POST /v1/invoices/{id}/void voids an open or uncollectible one;
    anything else is a 400. `stub.requests` lists (method, path)."""
    stub = SimpleNamespace(requests=[], lock=threading.Lock())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?")[0]
            with stub.lock:
                stub.requests.append((method, path))
                m = re.fullmatch(r"/v1/invoices/([A-Za-z0-9_]+)(/void)?", path)
                inv = invoices.get(m.group(1)) if m else None
                if inv is not None and method == "GET" and not m.group(2):
                    _reply(self, 200, json.dumps(inv).encode())
                elif inv is not None and method == "POST" and m.group(2) and inv["status"] in ("open", "uncollectible"):
                    inv["status"] = "void"  # Stripe voids open and uncollectible invoices only
                    _reply(self, 200, json.dumps(inv).encode())
                else:
                    _reply(self, 400, _error("Not in this stub", "invalid_request_error"))

        def do_GET(self) -> None:  # noqa: N802
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

    server, url = serve(Handler)
    try:
        yield stub, url
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# the ledger


@dataclass
class Invoice:
    account_id: str
    currency: str
    lines: list[tuple[str, str, int, int]]  # (category, line_type, quantity, amount_minor)
    period: str = "2026-10"
    voided: bool = False
    version: int = 1

    @property
    def invoice_id(self) -> str:
        return f"inv_{self.account_id}_{self.period}"

    def line_id(self, i: int) -> str:
        category, line_type, _, _ = self.lines[i]
        return f"{self.invoice_id}:sub_{self.account_id}|{category}|{line_type}"


def write_config(tmp_path: Path, extra: str = "") -> Path:
    toml = tmp_path / "meterline.toml"
    toml.write_text('[warehouse]\nurl = "duckdb:///wh.duckdb"\n' + extra, encoding="utf-8")
    return toml


def issue(conn: Any, invoices: list[Invoice]) -> None:
    """Write `invoices` into the ledger as a close would (and lock their periods)."""
    inv_rows, line_rows = [], []
    for inv in invoices:
        inv_rows.append({
            "invoice_id": inv.invoice_id, "account_id": inv.account_id, "period": inv.period,
            "currency": inv.currency, "total_minor": sum(a for *_, a in inv.lines), "line_count": len(inv.lines),
            "version": inv.version, "content_hash": f"h_{inv.invoice_id}",
            "voided_at": dt.datetime(2026, 11, 20) if inv.voided else None,
            "void_reason": "test" if inv.voided else None})
        for i, (category, line_type, quantity, amount) in enumerate(inv.lines):
            line_rows.append({
                "invoice_line_id": inv.line_id(i), "invoice_id": inv.invoice_id, "account_id": inv.account_id,
                "period": inv.period, "service_period": inv.period,
                "line_key": f"sub_{inv.account_id}|{category}|{line_type}", "line_type": line_type,
                "category": category, "currency": inv.currency, "quantity": quantity, "amount_minor": amount})
    schema_inv = pa.schema([("invoice_id", pa.string()), ("account_id", pa.string()), ("period", pa.string()),
                            ("currency", pa.string()), ("total_minor", pa.int64()), ("line_count", pa.int64()),
                            ("version", pa.int64()), ("content_hash", pa.string()),
                            ("voided_at", pa.timestamp("us")), ("void_reason", pa.string())])
    schema_line = pa.schema([("invoice_line_id", pa.string()), ("invoice_id", pa.string()),
                             ("account_id", pa.string()), ("period", pa.string()),
                             ("service_period", pa.string()), ("line_key", pa.string()),
                             ("line_type", pa.string()), ("category", pa.string()), ("currency", pa.string()),
                             ("quantity", pa.int64()), ("amount_minor", pa.int64())])
    conn.insert_arrow("ledger", "issued_invoices", pa.Table.from_pylist(inv_rows, schema=schema_inv))
    conn.insert_arrow("ledger", "issued_invoice_lines", pa.Table.from_pylist(line_rows, schema=schema_line))
    for period in sorted({inv.period for inv in invoices}):
        start = dt.datetime.strptime(period + "-01", "%Y-%m-%d")
        end = (start + dt.timedelta(days=32)).replace(day=1)
        conn.execute('INSERT INTO "ledger"."period_locks" (period, locked_at_interval, exports_manifest_sha256) '
                     "VALUES (?, ?, ?)", [period, end + dt.timedelta(days=2), "sha"])


# ---------------------------------------------------------------------------------------------
# what Stripe holds


def stripe_state(client: Any) -> dict[str, Any]:
    """Everything the push can have created, read straight from the stand-in (no proxy)."""

    def every(service: Any, **params: Any) -> list[dict[str, Any]]:
        out, after = [], None
        while True:
            page = service.list(params={"limit": 100, **params, **({"starting_after": after} if after else {})})
            data = [o.to_dict() for o in page.data]
            out += data
            if not page.has_more or not data:
                return out
            after = data[-1]["id"]

    invoices = every(client.v1.invoices)
    lines = {inv["id"]: [li.to_dict() for li in client.v1.invoices.line_items.list(
        inv["id"], params={"limit": 100}).data] for inv in invoices}
    return {"customers": every(client.v1.customers), "invoices": invoices, "lines": lines,
            "pending_items": every(client.v1.invoice_items)}
