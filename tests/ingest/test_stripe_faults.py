"""The Stripe extractor under faults: 429 with Retry-After, 500, stalls past the client timeout,
`Stripe-Should-Retry`; nothing lost, nothing duplicated; the API key in no log line or error.
Also the sample world's events, sharding and `meterline resync stripe`."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import run_cli

from ingest.stripe import (
    RetryPolicy,
    StripeReader,
    call_with_retry,
    extract_stripe_interval,
    make_client,
    retry_decision,
    shard_windows,
)
from meterline.errors import SourceError
from meterline.sample import generate, serve_stripe_fixture

KEY = "sk_test_fault_canary_789"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stripe_world")
    generate(out, seed=5, accounts=12, days=34)
    return out


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"


class FaultProxy:
    """Forwards GETs to `upstream`; a seeded ~30% of requests instead get a 429 with
    Retry-After, a 500, or a stall longer than the client's timeout."""

    def __init__(self, upstream: str, seed: int, rate: float = 0.3, stall: float = 0.6) -> None:
        self.upstream, self.rate, self.stall = upstream, rate, stall
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {"ok": 0, "429": 0, "500": 0, "stall": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                with proxy.lock:
                    draw = proxy.rng.random()
                    kind = ("ok" if draw >= proxy.rate else
                            ("429", "500", "stall")[int(draw / proxy.rate * 3)])
                    proxy.counts[kind] += 1
                if kind == "429":
                    body = {"error": {"type": "invalid_request_error", "code": "rate_limit",
                                      "message": "Too many requests hit the API too quickly."}}
                    self._reply(429, json.dumps(body).encode(), {"Retry-After": "7"})
                elif kind == "500":
                    body = {"error": {"type": "api_error", "message": "Something went wrong."}}
                    self._reply(500, json.dumps(body).encode(), {})
                elif kind == "stall":
                    time.sleep(proxy.stall)
                    self.close_connection = True
                else:
                    req = urllib.request.Request(proxy.upstream + self.path, headers={
                        "Authorization": self.headers.get("Authorization", "")})
                    try:
                        with urllib.request.urlopen(req, timeout=10) as resp:
                            status, payload = resp.status, resp.read()
                    except urllib.error.HTTPError as err:
                        status, payload = err.code, err.read()
                    self._reply(status, payload, {})

        self.handler = Handler


@contextlib.contextmanager
def fault_proxy(upstream: str, seed: int) -> Iterator[tuple[FaultProxy, str]]:
    proxy = FaultProxy(upstream, seed)
    server, url = _serve(proxy.handler)
    try:
        yield proxy, url
    finally:
        server.shutdown()
        server.server_close()


def _rows(tables: dict[str, pa.Table]) -> dict[str, list[str]]:
    """Every table's rows, canonically rendered and sorted (order-independent comparison)."""
    return {name: sorted(json.dumps(r, sort_keys=True, default=str) for r in t.to_pylist())
            for name, t in tables.items()}


NIGHTS = [dt.date(2026, 10, 1), dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]


def _night(reader: StripeReader, day: dt.date) -> dict[str, pa.Table]:
    start = dt.datetime.combine(day, dt.time())
    return extract_stripe_interval(reader, start, start + dt.timedelta(days=1))


def test_faults_lose_and_duplicate_nothing(world: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps: list[float] = []
    with serve_stripe_fixture(world / "sources" / "stripe") as base:
        clean = StripeReader(make_client(KEY, base), KEY, page_limit=3, shards=1, max_concurrency=1)
        want = {day: _rows(_night(clean, day)) for day in NIGHTS}
        with fault_proxy(base, seed=20261101) as (proxy, url):
            faulty = StripeReader(make_client(KEY, url, timeout=0.3), KEY, page_limit=3, shards=4,
                                  max_concurrency=4,
                                  retry=RetryPolicy(max_attempts=12, sleep=sleeps.append, seed=1))
            got = {day: _rows(_night(faulty, day)) for day in NIGHTS}
    assert got == want
    assert all(proxy.counts[k] > 0 for k in ("429", "500", "stall")), proxy.counts
    # every 429 was honoured with its Retry-After; the rest backed off
    assert sleeps.count(7.0) == proxy.counts["429"]
    assert len(sleeps) == proxy.counts["429"] + proxy.counts["500"] + proxy.counts["stall"]
    # the nights hold what the world says: created in the night, plus event-driven updates
    nov2 = want[dt.date(2026, 11, 2)]
    assert any('"invoice.paid"' in r for r in nov2["stripe_events"])
    assert KEY not in caplog.text
    assert "retry" in caplog.text  # the retries were logged, without the key


class Scripted:
    """Answers `/v1/charges` with the scripted (status, headers) replies, then empty pages."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.requests = 0
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802
                scripted.requests += 1
                status, headers = scripted.script.pop(0) if scripted.script else (200, {})
                if status == 200:
                    body: dict[str, Any] = {"object": "list", "data": [], "has_more": False,
                                            "url": "/v1/charges"}
                else:
                    # echo the key, as a careless server might: it must still never surface
                    auth = self.headers.get("Authorization", "")
                    body = {"error": {"type": "api_error", "message": f"failed for {auth}"}}
                payload = json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.handler = Handler


def _scripted_list(script: list[tuple[int, dict[str, str]]], max_attempts: int = 5,
                   clock: Callable[[], dt.datetime] | None = None,
                   ) -> tuple[Scripted, list[float], Exception | None]:
    scripted = Scripted(script)
    server, url = _serve(scripted.handler)
    sleeps: list[float] = []
    error: Exception | None = None
    policy = RetryPolicy(max_attempts=max_attempts, sleep=sleeps.append, seed=3)
    if clock is not None:
        policy.clock = clock
    try:
        reader = StripeReader(make_client(KEY, url), KEY, retry=policy)
        reader.list_window("charges", (0, 10))
    except SourceError as exc:
        error = exc
    finally:
        server.shutdown()
        server.server_close()
    return scripted, sleeps, error


def test_should_retry_false_is_never_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    scripted, sleeps, error = _scripted_list([(503, {"Stripe-Should-Retry": "false"})])
    assert scripted.requests == 1 and sleeps == []
    assert error is not None and "stripe source" in str(error) and "503" in str(error)
    assert KEY not in str(error) and KEY not in caplog.text


def test_429_retry_after_then_backoff_then_success() -> None:
    scripted, sleeps, error = _scripted_list(
        [(429, {"Retry-After": "3"}), (500, {}), (502, {}), (400, {"Stripe-Should-Retry": "true"})])
    assert error is None and scripted.requests == 5
    assert sleeps[0] == 3.0
    # then exponential backoff with jitter: retry n waits in [cap/2, cap], cap = 0.5 s * 2^(n-1)
    assert 0.5 <= sleeps[1] <= 1.0 and 1.0 <= sleeps[2] <= 2.0 and len(sleeps) == 4


def test_client_errors_fail_at_once_and_retries_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    scripted, sleeps, error = _scripted_list([(401, {})])
    assert scripted.requests == 1 and sleeps == [] and error is not None
    scripted, sleeps, error = _scripted_list([(500, {})] * 10, max_attempts=4)
    assert scripted.requests == 4 and len(sleeps) == 3
    assert error is not None and "gave up after 4 attempts" in str(error)
    assert "stripe source" in str(error) and KEY not in str(error) and KEY not in caplog.text


def test_retry_decision_rules() -> None:
    import stripe

    assert retry_decision(stripe.RateLimitError("x", http_status=429, headers={"Retry-After": "2"})) == (True, 2.0)
    assert retry_decision(stripe.RateLimitError("x", http_status=429,
                                                headers={"Stripe-Should-Retry": "false"}))[0] is False
    assert retry_decision(stripe.APIConnectionError("timeout"))[0] is True
    assert retry_decision(stripe.InvalidRequestError("bad", None, http_status=400))[0] is False
    assert retry_decision(stripe.APIError("x", http_status=500, headers={"retry-after": "soon"})) == (True, None)


# A fixed "now" (whole seconds: an HTTP date has no fractions) for Retry-After HTTP dates.
NOW = dt.datetime(2026, 10, 21, 7, 27, 53, tzinfo=dt.UTC)


def _http_date(at: dt.datetime) -> str:
    return email.utils.format_datetime(at.astimezone(dt.UTC), usegmt=True)


def test_retry_after_http_date_is_honoured() -> None:
    """`Retry-After: <HTTP date>` (RFC 7231) waits date − now, read with the policy's clock."""
    in_7s = _http_date(NOW + dt.timedelta(seconds=7))
    assert in_7s == "Wed, 21 Oct 2026 07:28:00 GMT"
    scripted, sleeps, error = _scripted_list(
        [(429, {"Retry-After": in_7s}), (503, {"Retry-After": "Wed, 21 Oct 2026 07:27:00 GMT"})],
        clock=lambda: NOW,
    )
    assert error is None and scripted.requests == 3
    # 7 s until the date; a date already past means retry now (never a negative sleep)
    assert sleeps == [7.0, 0.0]


def test_retry_after_http_date_rules() -> None:
    import stripe

    def decide(value: str) -> tuple[bool, float | None]:
        return retry_decision(
            stripe.RateLimitError("x", http_status=429, headers={"Retry-After": value}), NOW
        )

    assert decide("Wed, 21 Oct 2026 07:28:00 GMT") == (True, 7.0)
    assert decide("Wednesday, 21-Oct-26 07:28:00 GMT") == (True, 7.0)  # RFC 850, obsolete
    assert decide("Wed Oct 21 07:28:00 2026") == (True, 7.0)  # asctime: no zone, read as UTC
    assert decide("Wed, 21 Oct 2026 09:28:00 +0200") == (True, 7.0)  # an offset is honoured
    assert decide("Tue, 20 Oct 2026 07:28:00 GMT") == (True, 0.0)  # past: no wait
    assert decide("Wed, 32 Oct 2026 07:28:00 GMT") == (True, None)  # not a date: back off
    assert decide("-1") == (True, None)
    # a naive "now" is UTC as well; without one, the current time is used (a past date: 0)
    naive_now = NOW.replace(tzinfo=None)
    error = stripe.RateLimitError(
        "x", http_status=429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}
    )
    assert retry_decision(error, naive_now) == (True, 7.0)
    past = stripe.RateLimitError(
        "x", http_status=429, headers={"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}
    )
    assert retry_decision(past) == (True, 0.0)


def test_retry_after_http_date_is_capped() -> None:
    """A far-away date waits at most `max_retry_after`, like delay-seconds do."""
    import stripe

    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise stripe.RateLimitError(
                "slow down",
                http_status=429,
                headers={"Retry-After": _http_date(NOW + dt.timedelta(hours=1))},
            )
        return "ok"

    policy = RetryPolicy(sleep=sleeps.append, clock=lambda: NOW, max_retry_after=120.0)
    assert call_with_retry(flaky, "listing charges", policy) == "ok"
    assert sleeps == [120.0]


def test_shards_cover_the_interval_exactly() -> None:
    for lo, hi, n in [(0, 86400, 4), (10, 13, 8), (5, 6, 4), (0, 86401, 7)]:
        windows = shard_windows(lo, hi, n)
        assert windows[0][0] == lo and windows[-1][1] == hi
        assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
        assert len(windows) == min(n, hi - lo)


def test_events_bring_updates_of_older_objects(world: Path) -> None:
    """Nov 2 stores the paid version of invoices created (open) on Nov 1, from invoice.paid; every
    object's latest stored version over the nights equals the world's final state."""
    stripe_dir = world / "sources" / "stripe"
    final = {o["id"]: o for f in stripe_dir.glob("*.json") if f.stem != "events"
             for o in json.loads(f.read_text())}
    latest: dict[str, dict[str, Any]] = {}
    with serve_stripe_fixture(stripe_dir) as base:
        reader = StripeReader(make_client(KEY, base), KEY, shards=1)
        for i in range(34):
            tables = _night(reader, dt.date(2026, 10, 1) + dt.timedelta(days=i))
            for name, t in tables.items():
                if name in ("stripe_events", "stripe_cursor", "stripe_invoice_lines"):
                    continue
                for r in t.to_pylist():
                    latest[r["id"]] = json.loads(r["object_json"])
            if i == 32:  # 2026-11-02
                events = tables["stripe_events"].to_pylist()
                paid = {e["object_id"] for e in events if e["type"] == "invoice.paid"}
                updated = {r["id"] for r in tables["stripe_invoices"].to_pylist()}
                assert paid and paid <= updated
    for object_id, obj in latest.items():
        want = dict(final[object_id])
        if want.get("object") == "invoice":  # the API embeds the first page of lines only
            obj, want = {**obj, "lines": None}, {**want, "lines": None}
        assert obj == want, object_id


def test_resync_cli(world: Path, tmp_path: Path) -> None:
    """`meterline resync stripe` loads every object created before the last loaded night as one
    batch; the same resync again is skipped as identical."""
    toml = tmp_path / "meterline.toml"
    toml.write_text(
        "[sources]\n"
        f'stripe_fixture = "{world / "sources" / "stripe"}"\n'
        f'metering_url = "duckdb:///{world / "sources" / "metering.duckdb"}"\n'
        f'billing_url = "duckdb:///{world / "sources" / "billing.duckdb"}"\n'
        "[warehouse]\n"
        f'url = "duckdb:///{tmp_path / "wh.duckdb"}"\n')
    no_night = run_cli("--config", str(toml), "resync", "stripe", timeout=120)
    assert no_night.returncode == 2 and "--until" in no_night.stderr
    first = run_cli("--config", str(toml), "--json", "resync", "stripe", "--until", "2026-11-02",
                    timeout=120)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    customers = json.loads((world / "sources" / "stripe" / "customers.json").read_text())
    assert summary["row_counts"]["stripe_customers"] == len(customers)
    assert summary["action"] == "loaded" and summary["until"].startswith("2026-11-02")
    again = run_cli("--config", str(toml), "--json", "resync", "stripe", "--until", "2026-11-02",
                    timeout=120)
    assert json.loads(again.stdout)["action"] == "skipped_identical"
    assert "stripe_resync" in run_cli("--config", str(toml), "status", timeout=120).stdout
