"""Engineers' alerts (reconcile/alerts.py) end to end: a real warehouse, a real local HTTP server
receiving the webhook and a real SMTP server (aiosmtpd) receiving the email."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import free_port

from ingest.load import ensure_raw
from meterline.config import load_config
from meterline.warehouse import Connection, connect
from reconcile.alerts import AlertMessage, Item, compose, format_amount, notify

NIGHT1 = dt.datetime(2026, 10, 2)
NIGHT2 = dt.datetime(2026, 10, 3)
NIGHT3 = dt.datetime(2026, 10, 4)
HOOK_TOKEN = "T0001/B0002/zzSecretHookToken42"
SMTP_USER = "alerts"
SMTP_PASSWORD = "pw-Very-Secret-9137"


# -- receivers --------------------------------------------------------------------------------


class Hook:
    """A Slack-compatible incoming webhook on a local port; `status` is what it answers."""

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0  # seconds to wait before answering
        self.delivered: list[dict[str, Any]] = []  # payloads answered with 2xx
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                if hook.delay:
                    time.sleep(hook.delay)
                assert self.path == "/services/" + HOOK_TOKEN
                assert self.headers["Content-Type"].startswith("application/json")
                if hook.status < 300:
                    hook.delivered.append(json.loads(body))
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok" if hook.status < 300 else b"internal error")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{HOOK_TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def texts(self) -> list[str]:
        return [p["text"] for p in self.delivered]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    """aiosmtpd handler: keeps every accepted message; requires our login."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.rcpts: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if not session.authenticated:
            return "530 Authentication required"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.rcpts.append(list(envelope.rcpt_tos))
        return "250 OK"

    def bodies(self) -> list[str]:
        return [m.get_content().replace("\r\n", "\n") for m in self.messages]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


class Smtpd:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port,
                                     authenticator=_authenticate, auth_require_tls=False)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def smtpd() -> Iterator[Smtpd]:
    s = Smtpd(free_port())
    s.start()
    yield s
    s.stop()


# -- warehouse and config ---------------------------------------------------------------------


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "postgres":
        return {"METERLINE_WAREHOUSE": request.getfixturevalue("pg_url")}
    return {}


def make_cfg(tmp_path: Path, hook: Hook | None, smtp_port: int | None,
             extra_env: dict[str, str] | None = None, top: int = 5, timeout: float = 3):
    lines = ['[warehouse]', 'url = "duckdb:///wh.duckdb"', '[alerts]', f'timeout_seconds = {timeout}',
             f'top_offenders = {top}']
    if smtp_port is not None:
        lines += ['smtp_host = "127.0.0.1"', f'smtp_port = {smtp_port}', f'smtp_user = "{SMTP_USER}"',
                  'smtp_from = "meterline@example.com"',
                  'smtp_to = "oncall@example.com, billing-eng@example.com"']
    (tmp_path / "meterline.toml").write_text("\n".join(lines) + "\n")
    env = dict(extra_env or {})
    if hook is not None:
        env["METERLINE_ALERTS_SLACK_WEBHOOK_URL"] = hook.url
    env["METERLINE_ALERTS_SMTP_PASSWORD"] = SMTP_PASSWORD
    return load_config(tmp_path / "meterline.toml", env=env)


def open_warehouse(cfg: Any, currencies: bool = True) -> Iterator[Connection]:
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        if currencies:
            conn.execute('CREATE SCHEMA IF NOT EXISTS "seeds"')
            conn.execute('CREATE TABLE "seeds"."currencies" (currency VARCHAR(3), '
                         'minor_unit_exponent INTEGER, minor_unit_factor BIGINT)')
            conn.execute("INSERT INTO \"seeds\".\"currencies\" VALUES ('USD', 2, 100), ('JPY', 0, 1), "
                         "('KWD', 3, 1000)")
        yield conn


def usage(account: str, diff: int | str, status: str = "drift") -> dict[str, Any]:
    return {"check_name": "usage_daily", "status": status, "account_id": account,
            "category": "api_calls", "period": None, "day": "2026-10-01", "object_id": None,
            "reason": None, "detail": f"metering=... diff={diff}", "difference": Decimal(diff),
            "unit": "units", "explanation_id": None}


def invoice(account: str, diff_minor: int, currency: str = "USD") -> dict[str, Any]:
    return {"check_name": "invoice_totals", "status": "drift", "account_id": account,
            "category": None, "period": "2026-10", "day": None, "object_id": None, "reason": None,
            "detail": "computed=... stripe=...", "difference": Decimal(diff_minor),
            "unit": currency, "explanation_id": None}


def payment(object_id: str, diff_minor: int) -> dict[str, Any]:
    return {"check_name": "payments", "status": "missing_in_stripe", "account_id": None,
            "category": None, "period": None, "day": None, "object_id": object_id, "reason": None,
            "detail": "", "difference": Decimal(diff_minor), "unit": "USD", "explanation_id": None}


def only(texts: list[str]) -> str:
    assert len(texts) == 1, texts
    return texts[0]


def no_secret(*texts: str) -> None:
    for t in texts:
        assert HOOK_TOKEN not in t and "zzSecretHookToken42" not in t, t
        assert SMTP_PASSWORD not in t, t


def log_rows(conn: Connection) -> list[dict[str, Any]]:
    return conn.fetch_dicts('SELECT * FROM "ledger"."alert_log" ORDER BY run_seq, channel, kind, item_key')


# -- the three nights -------------------------------------------------------------------------


def test_three_nights_new_digest_changed_resolved_and_rerun(
        tmp_path: Path, hook: Hook, smtpd: Smtpd, warehouse_env: dict[str, str]) -> None:
    cfg = make_cfg(tmp_path, hook, smtpd.port, warehouse_env)
    for conn in open_warehouse(cfg):
        a, b = usage("acct_a", 1500), invoice("acct_b", 123456)

        # night 1: two new findings -> one "new" alert with both, on both channels
        r1 = notify(conn, cfg, NIGHT1, [a, b], [])
        assert (r1.new, r1.changed, r1.digest, r1.resolved, r1.errors) == (2, 0, 0, 0, 0)
        assert not r1.failed and r1.channels["slack"].sent == ["new (2 items)"]
        assert r1.channels["email"].sent == ["new (2 items)"]
        text = only(hook.texts())
        body = only(smtpd.inbox.bodies())
        assert only(smtpd.inbox.subjects()) == "[meterline] 2 new reconciliation findings, as of 2026-10-02 00:00 UTC"
        assert smtpd.inbox.rcpts == [["oncall@example.com", "billing-eng@example.com"]]
        for t in (text, body):
            assert "usage_daily: 1 finding (drift 1), off by 1,500 units in total" in t
            assert ("1. account acct_a · category api_calls · day 2026-10-01: drift, 1,500 units, "
                    "since 2026-10-02 00:00 UTC") in t
            # money in major units with the currency's exponent
            assert "account acct_b · period 2026-10: drift, 1,234.56 USD, since 2026-10-02 00:00 UTC" in t
            assert "details: meterline reconcile --details --check usage_daily" in t
            assert "details: meterline reconcile --details --check invoice_totals" in t
        blocks = hook.delivered[0]["blocks"]
        assert blocks[0]["type"] == "header" and "2 new" in blocks[0]["text"]["text"]
        assert [b_["text"]["text"].split(":")[0] for b_ in blocks[1:]] == ["invoice_totals", "usage_daily"]

        # night 2: both unchanged + one new -> "new" with only the new one, digest with the old two
        c = usage("acct_c", 70)
        r2 = notify(conn, cfg, NIGHT2, [b, a, c], [])
        assert (r2.new, r2.changed, r2.digest, r2.resolved) == (1, 0, 2, 0)
        assert r2.channels["slack"].sent == ["new (1 item)", "digest (2 items)"]
        new2, digest2 = hook.texts()[1:]
        assert email_pair(smtpd, 1) == [new2, digest2]
        assert new2.startswith("[meterline] 1 new reconciliation finding, as of 2026-10-03 00:00 UTC")
        assert "account acct_c · category api_calls · day 2026-10-01: drift, 70 units, since 2026-10-03 00:00 UTC" in new2
        assert "acct_a" not in new2 and "acct_b" not in new2
        assert digest2.startswith("[meterline] Daily digest 2026-10-03: 2 open reconciliation findings unchanged")
        assert "acct_a · category api_calls · day 2026-10-01: drift, 1,500 units, since 2026-10-02 00:00 UTC" in digest2
        assert "acct_b · period 2026-10: drift, 1,234.56 USD, since 2026-10-02 00:00 UTC" in digest2
        assert "acct_c" not in digest2
        assert "meterline reconcile --details --check invoice_totals" in digest2

        # rerun of night 2: nothing is sent again
        r2b = notify(conn, cfg, NIGHT2, [a, b, c], [])
        assert (r2b.new, r2b.digest) == (1, 2)  # the same classification as the first run
        assert len(hook.delivered) == 3 and len(smtpd.inbox.messages) == 3
        assert r2b.channels["slack"].sent == [] and r2b.channels["slack"].already_sent == 3
        assert r2b.channels["email"].already_sent == 3 and not r2b.failed

        # night 3: acct_a resolved, acct_c changed (70 -> 95 units), acct_b unchanged
        r3 = notify(conn, cfg, NIGHT3, [b, usage("acct_c", 95)], [])
        assert (r3.new, r3.changed, r3.digest, r3.resolved) == (0, 1, 1, 1)
        changed3, resolved3, digest3 = hook.texts()[3:]
        assert email_pair(smtpd, 3, 3) == [changed3, resolved3, digest3]
        assert changed3.startswith("[meterline] 1 reconciliation finding changed, as of 2026-10-04 00:00 UTC")
        assert "acct_c · category api_calls · day 2026-10-01: drift, 95 units (was drift, 70 units), since 2026-10-03 00:00 UTC" in changed3
        assert resolved3.startswith("[meterline] 1 reconciliation finding resolved, as of 2026-10-04 00:00 UTC")
        assert ("acct_a · category api_calls · day 2026-10-01: resolved; was drift, 1,500 units; "
                "open since 2026-10-02 00:00 UTC, last seen 2026-10-03 00:00 UTC") in resolved3
        assert "acct_b" in digest3 and "acct_a" not in digest3 and "acct_c" not in digest3
        for t in hook.texts() + smtpd.inbox.bodies():
            no_secret(t)

        outcomes = {(r["channel"], r["kind"], r["outcome"]) for r in log_rows(conn)}
        assert outcomes == {(ch, k, "sent") for ch in ("slack", "email")
                            for k in ("new", "digest", "changed", "resolved")}
        assert len(log_rows(conn)) == 2 * (2 + 1 + 2 + 1 + 1 + 1)  # items per channel, no rerun rows


def email_pair(smtpd: Smtpd, start: int, n: int = 2) -> list[str]:
    """The email bodies from `start`, as the webhook's texts (same content on both channels)."""
    bodies = smtpd.inbox.bodies()[start:]
    assert len(bodies) == n, bodies
    return [b.rstrip("\n") for b in bodies]


# -- a channel down ---------------------------------------------------------------------------


def test_webhook_500_does_not_hide_the_email_and_a_rerun_sends_what_failed(
        tmp_path: Path, hook: Hook, smtpd: Smtpd, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_cfg(tmp_path, hook, smtpd.port)
    caplog.set_level(logging.DEBUG)
    for conn in open_warehouse(cfg):
        findings = [usage("acct_a", 1500), invoice("acct_jp", 5000, "JPY")]
        hook.status = 500
        r = notify(conn, cfg, NIGHT1, findings, [{"check_name": "payments", "detail": "boom"}])
        assert r.failed
        assert hook.attempts == 1 and hook.delivered == []  # a 5xx: no retry storm on a dead hook
        slack = r.channels["slack"]
        assert slack.sent == [] and len(slack.failed) == 2  # the error alert and the new alert
        assert "HTTP 500 Internal Server Error" in slack.failed[0]
        assert "not attempted after an earlier failure" in slack.failed[1]
        assert r.channels["email"].sent == ["error (1 item)", "new (2 items)"]
        assert "5,000 JPY" in smtpd.inbox.bodies()[1]
        summary = r.summary()
        assert "FAILED" in summary and "HTTP 500" in summary and "rerun of this night" in summary
        assert "127.0.0.1" in summary and "/***" in summary
        failed_rows = [x for x in log_rows(conn) if x["outcome"] == "failed"]
        assert {x["kind"] for x in failed_rows} == {"error", "new"}
        assert all("HTTP 500" in x["reason"] or "earlier failure" in x["reason"] for x in failed_rows)
        no_secret(summary, *r.reasons, caplog.text, json.dumps(r.to_dict()),
                  *[x["reason"] for x in failed_rows])

        # the hook is back: the rerun sends the failed alerts there, nothing again by email
        hook.status = 200
        r2 = notify(conn, cfg, NIGHT1, findings, [])
        assert not r2.failed and r2.channels["email"].sent == []
        text = only(hook.texts())
        assert "2 new reconciliation findings" in text and "5,000 JPY" in text and "acct_a" in text
        assert len(smtpd.inbox.messages) == 2


def test_smtp_down_does_not_hide_the_webhook_and_a_rerun_sends_what_failed(
        tmp_path: Path, hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    smtpd = Smtpd(free_port())  # nothing listens on its port yet
    cfg = make_cfg(tmp_path, hook, smtpd.port)
    caplog.set_level(logging.DEBUG)
    try:
        for conn in open_warehouse(cfg):
            findings = [payment("ch_123", 2599), usage("acct_a", 10)]
            r = notify(conn, cfg, NIGHT1, findings, [])
            assert r.failed and r.channels["slack"].sent == ["new (2 items)"]
            mail = r.channels["email"]
            assert mail.sent == [] and len(mail.failed) == 1
            assert "connection refused" in mail.failed[0] and f"127.0.0.1:{smtpd.port}" in mail.failed[0]
            text = only(hook.texts())
            assert "object ch_123: missing_in_stripe, 25.99 USD" in text
            assert "meterline reconcile --details --check payments" in text
            no_secret(r.summary(), *r.reasons, caplog.text)

            smtpd.start()
            r2 = notify(conn, cfg, NIGHT1, findings, [])
            assert not r2.failed and r2.channels["slack"].sent == []
            assert r2.channels["email"].sent == ["new (2 items)"]
            body = only(smtpd.inbox.bodies())
            assert "ch_123" in body and "acct_a" in body and "25.99 USD" in body
            assert len(hook.delivered) == 1
            no_secret(body)
    finally:
        smtpd.stop()


def test_smtp_rejected_login_is_a_failure_without_the_password(
        tmp_path: Path, smtpd: Smtpd, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_cfg(tmp_path, None, smtpd.port)
    cfg.secrets["alerts_smtp_password"] = "wrong-" + SMTP_PASSWORD
    caplog.set_level(logging.DEBUG)
    for conn in open_warehouse(cfg):
        r = notify(conn, cfg, NIGHT1, [usage("acct_a", 10)], [])
        assert r.failed and smtpd.inbox.messages == []
        assert "SMTP 535" in r.channels["email"].failed[0]
        no_secret(r.summary(), caplog.text)
        assert "wrong-" not in r.summary() + caplog.text


def test_a_webhook_timeout_is_a_failure_and_the_rest_is_not_attempted(
        tmp_path: Path, hook: Hook, smtpd: Smtpd) -> None:
    cfg = make_cfg(tmp_path, hook, smtpd.port, timeout=0.3)
    for conn in open_warehouse(cfg):
        assert not notify(conn, cfg, NIGHT1, [usage("acct_a", 5)], []).failed
        hook.delay = 1.0
        r = notify(conn, cfg, NIGHT2, [usage("acct_a", 5), usage("acct_b", 7)],
                   [{"check_name": "invoice_lines", "detail": "boom"}])
        slack = r.channels["slack"]
        assert r.failed and slack.sent == []
        assert [line.split(":")[0] for line in slack.failed] == ["error (1 item)", "new (1 item)", "digest (1 item)"]
        assert "timed out after 0.3 s" in slack.failed[0]
        assert "not attempted after an earlier failure" in slack.failed[2]
        assert hook.attempts == 2  # night 1, then one attempt only on night 2
        assert r.channels["email"].sent == ["error (1 item)", "new (1 item)", "digest (1 item)"]
        no_secret(r.summary())


def test_one_digest_per_date(tmp_path: Path, hook: Hook) -> None:
    cfg = make_cfg(tmp_path, hook, None)
    for conn in open_warehouse(cfg):
        findings = [usage("acct_a", 5)]
        notify(conn, cfg, NIGHT1, findings, [])
        r = notify(conn, cfg, NIGHT2, findings, [])
        assert r.channels["slack"].sent == ["digest (1 item)"]
        # a later as_of on the same date: no second digest that day
        r2 = notify(conn, cfg, NIGHT2 + dt.timedelta(hours=12), findings, [])
        assert r2.digest == 1 and r2.channels["slack"].sent == []
        r3 = notify(conn, cfg, NIGHT3, findings, [])
        assert r3.channels["slack"].sent == ["digest (1 item)"]
        assert "since 2026-10-02 00:00 UTC" in hook.texts()[-1]
        assert len(hook.delivered) == 3


# -- check errors -----------------------------------------------------------------------------


def test_a_check_error_is_alerted_as_an_error_on_every_run_and_resolves_nothing(
        tmp_path: Path, hook: Hook) -> None:
    cfg = make_cfg(tmp_path, hook, None)
    for conn in open_warehouse(cfg):
        notify(conn, cfg, NIGHT1, [payment("ch_1", 100), usage("acct_a", 5)], [])
        error = {"check_name": "payments", "detail": "KeyError: 'status'\n(in the GX validator)"}
        r = notify(conn, cfg, NIGHT2, [usage("acct_a", 5)], [error])
        assert (r.errors, r.resolved, r.new, r.digest) == (1, 0, 0, 2)
        err, digest = hook.texts()[1:]
        assert err.startswith("[meterline] ERROR: 1 reconciliation check errored, as of 2026-10-03 00:00 UTC")
        assert "payments: status error (the check raised): KeyError: 'status' (in the GX validator)" in err
        assert "neither a pass nor a drift" in err
        assert "meterline reconcile --details --check payments" in err
        # its finding is not announced as resolved: it stays open as last confirmed
        assert "object ch_1: missing_in_stripe, 1.00 USD, since 2026-10-02 00:00 UTC, last confirmed 2026-10-02 00:00 UTC (its check errored tonight)" in digest
        assert not any("resolved" in t.splitlines()[0] for t in hook.texts())

        # the rerun errors again: the error is alerted again (each run is an occurrence)
        r2 = notify(conn, cfg, NIGHT2, [usage("acct_a", 5)], [error])
        assert r2.channels["slack"].sent == ["error (1 item)"]
        assert hook.texts()[-1] == err

        # the check runs again the next night and the payment finding is gone: now it is resolved
        r3 = notify(conn, cfg, NIGHT3, [usage("acct_a", 5)], [])
        assert (r3.errors, r3.resolved) == (0, 1)
        assert "object ch_1: resolved; was missing_in_stripe, 1.00 USD" in hook.texts()[-2]


# -- message pieces ---------------------------------------------------------------------------


def test_top_offenders_are_the_largest_differences_and_the_rest_is_counted() -> None:
    as_of = NIGHT1
    items = [Item("new", f"k{n}", "usage_daily", "drift", {"account_id": f"acct_{n}", "category": "api_calls"},
                  Decimal(d), "units", as_of, as_of) for n, d in enumerate([5, 900, 40, 1200])]
    m: AlertMessage = compose("new", items, as_of, 2, None)
    lines = m.text.splitlines()
    top = [line for line in lines if line.startswith("  1.") or line.startswith("  2.")]
    assert top == ["  1. account acct_3 · category api_calls: drift, 1,200 units, since 2026-10-02 00:00 UTC",
                   "  2. account acct_1 · category api_calls: drift, 900 units, since 2026-10-02 00:00 UTC"]
    assert "  … and 2 more" in lines
    assert "usage_daily: 4 findings (drift 4), off by 2,145 units in total" in m.text


def test_amounts_without_the_currency_table_fall_back_to_minor_units(tmp_path: Path, hook: Hook) -> None:
    assert format_amount(Decimal("123456"), "USD", {"USD": 2}) == "1,234.56 USD"
    assert format_amount(Decimal("1234"), "KWD", {"KWD": 3}) == "1.234 KWD"
    assert format_amount(Decimal("123456"), "USD", None) == "123,456 USD minor units"
    assert format_amount(Decimal("12.5"), "units", None) == "12.5 units"
    assert format_amount(None, "USD", None) == "difference unknown"
    cfg = make_cfg(tmp_path, hook, None)
    for conn in open_warehouse(cfg, currencies=False):
        notify(conn, cfg, NIGHT1, [invoice("acct_b", 123456)], [])
        assert "acct_b · period 2026-10: drift, 123,456 USD minor units" in only(hook.texts())


def test_no_channel_configured_still_keeps_state(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, None, None)
    for conn in open_warehouse(cfg):
        r1 = notify(conn, cfg, NIGHT1, [usage("acct_a", 5)], [])
        r2 = notify(conn, cfg, NIGHT2, [usage("acct_a", 5)], [])
        assert (r1.new, r2.new, r2.digest) == (1, 0, 1) and not r2.failed
        assert "No alert channel is configured" in r2.summary()


def test_secrets_are_masked_even_when_a_check_error_quotes_them(
        tmp_path: Path, hook: Hook, smtpd: Smtpd, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_cfg(tmp_path, hook, smtpd.port)
    caplog.set_level(logging.DEBUG)
    leaky = {"check_name": "payments",
             "detail": f"ConnectionError: POST {hook.url} failed; login alerts:{SMTP_PASSWORD}"}
    for conn in open_warehouse(cfg):
        r = notify(conn, cfg, NIGHT1, [], [leaky])
        assert r.channels["slack"].sent == r.channels["email"].sent == ["error (1 item)"]
        text, body = only(hook.texts()), only(smtpd.inbox.bodies())
        assert "ConnectionError: POST *** failed; login alerts:***" in text
        no_secret(text, json.dumps(hook.delivered), body, r.summary(), caplog.text)
