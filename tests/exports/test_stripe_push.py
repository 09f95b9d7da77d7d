"""The Stripe push (exports/stripe_push.py): a closed period's issued invoices become Stripe
customers, invoice items and invoices that match the ledger, and no rerun, retry, lost response or
lost outbox ever creates one twice.

Most tests run against localstripe (an independent fake Stripe that ignores idempotency keys, so
only meterline's own outbox and metadata lookups stand between a retry and a duplicate), some
through a seeded fault proxy. The finalize call, which localstripe lacks, runs against a stub of
that endpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe as stripe_sdk
from conftest import free_port
from invariants import stripe_one_to_one
from stripe_fakes import Invoice, finalize_stub, invoice_stub, issue, stripe_state, write_config
from stripe_fakes import fault_proxy as proxy_to

from exports.stripe_push import StripePusher, plan_period, push_period
from ingest.load import ensure_raw
from ingest.stripe import RetryPolicy, invoice_row, line_row, make_client
from meterline.config import Config, load_config
from meterline.errors import ConfigError, IntervalError
from meterline.warehouse import Connection, open_connection

KEY = "sk_test_push_canary_314"
PERIOD = "2026-10"

SMALL = [
    Invoice("acct_a", "USD", [("base_fee", "flat_fee", 1, 2900), ("api_calls", "usage", 123456, 4321),
                              ("storage", "usage", 10, 0), ("credit", "credit", 1, -500)]),
    Invoice("acct_b", "JPY", [("base_fee", "flat_fee", 1, 3000), ("api_calls", "usage", 999, 1234)]),
    Invoice("acct_c", "KWD", [("base_fee", "flat_fee", 1, 9875), ("errors", "usage", 77, 3)]),
    Invoice("acct_d", "USD", [("base_fee", "flat_fee", 1, 2900)], voided=True),
    Invoice("acct_a", "USD", [("base_fee", "flat_fee", 1, 2900), ("api_calls", "usage", 5, 7)], period="2026-11"),
]
SMALL_OBJECTS = 3 + 7 + 3  # customers a, b, c; the non-zero lines of 2026-10; its invoices


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[tuple[Config, Connection]]:
    cfg = load_config(write_config(tmp_path), env={})
    conn = open_connection(cfg.warehouse)
    ensure_raw(conn)
    try:
        yield cfg, conn
    finally:
        conn.close()


def _policy(attempts: int = 10, sleeps: list[float] | None = None) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, sleep=(sleeps.append if sleeps is not None else lambda s: None), seed=1)


def _push(wh: tuple[Config, Connection], url: str, period: str = PERIOD, attempts: int = 10,
          timeout: float = 10, **kwargs: Any):
    cfg, conn = wh
    return push_period(conn, cfg, period, api_base=url, api_key=KEY, localstripe=True,
                       retry=_policy(attempts), timeout=timeout, **kwargs)


def _outbox(conn: Connection) -> list[dict[str, Any]]:
    return conn.fetch_dicts('SELECT * FROM "ledger"."stripe_outbox" ORDER BY object_key')


def _ids(state: dict[str, Any]) -> dict[str, Any]:
    """What a rerun must leave unchanged: every object id and every invoice's line ids."""
    return {"customers": sorted(c["id"] for c in state["customers"]),
            "invoices": sorted(i["id"] for i in state["invoices"]),
            "lines": {k: sorted(li["id"] for li in v) for k, v in state["lines"].items()},
            "pending_items": sorted(i["id"] for i in state["pending_items"])}


def _check_stripe_matches_ledger(state: dict[str, Any], invoices: list[Invoice], *reports: Any) -> None:
    """Per pushed invoice: one Stripe invoice for (account_id, period) holding exactly its
    non-zero lines, with the amounts and the metadata reconciliation reads; no stray objects."""
    pushed = [inv for inv in invoices if not inv.voided and any(a for *_, a in inv.lines)]
    by_id = {i["id"]: i for i in state["invoices"]}
    periods = Counter((i["metadata"].get("account_id"), i["metadata"].get("period")) for i in state["invoices"])
    assert periods == Counter((inv.account_id, inv.period) for inv in pushed)
    accounts = Counter(c["metadata"].get("account_id") for c in state["customers"])
    assert accounts == Counter({inv.account_id for inv in pushed})
    assert state["pending_items"] == []  # nothing left to be swept into a later invoice
    every_key = [li["metadata"]["meterline_key"] for lines in state["lines"].values()
                 for li in lines if li["metadata"].get("meterline_key")]
    assert len(every_key) == len(set(every_key))  # no item twice
    for inv in pushed:
        got = next(r.invoices[inv.invoice_id] for r in reports if inv.invoice_id in r.invoices)
        assert got["state"] == "confirmed", got
        stripe_inv = by_id[got["stripe_invoice_id"]]
        row = invoice_row(stripe_inv)  # what the Stripe extractor hands reconciliation
        assert (row["account_id"], row["period"], row["currency"]) == (inv.account_id, inv.period, inv.currency)
        assert stripe_inv["customer"] == got["stripe_customer_id"]
        assert stripe_inv["metadata"]["meterline_invoice_id"] == inv.invoice_id
        expected = {inv.line_id(i): (amount, category, quantity)
                    for i, (category, _, quantity, amount) in enumerate(inv.lines) if amount}
        lines = state["lines"][stripe_inv["id"]]
        ours = [li for li in lines if li["metadata"].get("meterline_key")]
        assert {li["metadata"]["meterline_line_id"]: (li["amount"], line_row(stripe_inv["id"], li)["category"],
                                                      int(li["metadata"]["quantity"])) for li in ours} == expected
        assert {li["currency"] for li in ours} == {inv.currency.lower()}
        assert sorted(got["stripe_invoice_items"]) == sorted(expected)
        # localstripe's stand-in subscription adds one zero-amount line, nothing else
        assert [li["amount"] for li in lines if not li["metadata"].get("meterline_key")] == [0]
        assert stripe_inv["subtotal"] == sum(a for *_, a in inv.lines)


# ---------------------------------------------------------------------------------------------
# no Stripe needed


def test_plan_keys_amounts_and_guards(wh: tuple[Config, Connection]) -> None:
    cfg, conn = wh
    long_key = "x" * 400
    issue(conn, [
        Invoice("acct_isk", "ISK", [("base_fee", "flat_fee", 1, 1500), ("api_calls", "usage", 3, 0)]),
        Invoice("acct_jpy", "JPY", [("base_fee", "flat_fee", 1, 3000), (long_key, "usage", 2, 1)]),
    ])
    conn.execute("""UPDATE "ledger"."issued_invoices" SET total_minor = 999 WHERE account_id = 'acct_jpy'""")
    plans, voided = plan_period(conn, PERIOD)
    again, _ = plan_period(conn, PERIOD)
    assert [p.key for p in plans] == [p.key for p in again] and not voided
    assert [[i.key for i in p.items] for p in plans] == [[i.key for i in p.items] for p in again]
    isk, jpy = plans
    # ISK: ISO 4217 exponent 0, a two-decimal currency in Stripe's API; the zero line is not pushed
    assert isk.error is None and isk.zero_lines == 1 and len(isk.items) == 1
    assert isk.items[0].params["amount"] == 150000 and isk.stripe_total == 150000
    assert isk.items[0].params["currency"] == "isk"
    assert isk.items[0].params["metadata"]["quantity"] == "1"
    assert isk.items[0].key.startswith("ml:ii:acct_isk:2026-10:sub_acct_isk|base_fee|flat_fee:v1:")
    assert isk.key.startswith("ml:in:acct_isk:2026-10:v1:") and isk.finalize_key.startswith("ml:fin:")
    # a total that is not the sum of its lines is not pushed at all
    assert jpy.error and "999" in jpy.error and jpy.items == []
    # a changed amount is a different key; keys fit Stripe's 255-character idempotency keys
    conn.execute("""UPDATE "ledger"."issued_invoices" SET total_minor = 3001 WHERE account_id = 'acct_jpy'""")
    conn.execute("""UPDATE "ledger"."issued_invoice_lines" SET amount_minor = 2900 WHERE account_id = 'acct_isk'
                    AND category = 'base_fee'""")
    conn.execute("""UPDATE "ledger"."issued_invoices" SET total_minor = 2900 WHERE account_id = 'acct_isk'""")
    isk2, jpy2 = plan_period(conn, PERIOD)[0]
    assert jpy2.error is None and all(len(i.key) <= 255 for i in jpy2.items)
    assert isk2.items[0].key != isk.items[0].key and isk2.key != isk.key
    # an invalid Stripe endpoint is never reached: the failed invoice fails before any call
    r = push_period(conn, cfg, PERIOD, api_base=f"http://127.0.0.1:{free_port()}", api_key=KEY,
                    retry=_policy(1))
    assert r.invoices["inv_acct_jpy_2026-10"]["state"] == "failed"


def test_user_errors(wh: tuple[Config, Connection]) -> None:
    cfg, conn = wh
    issue(conn, SMALL[:1])
    with pytest.raises(IntervalError, match="YYYY-MM"):
        push_period(conn, cfg, "2026-13", api_key=KEY)
    with pytest.raises(IntervalError, match="not closed"):
        push_period(conn, cfg, "2026-09", api_key=KEY)
    with pytest.raises(ConfigError, match="METERLINE_STRIPE_API_KEY"):
        push_period(conn, cfg, PERIOD, api_key="")


@pytest.mark.parametrize("scenario", ["ok", "lost", "503", "400", "open"])
def test_finalize_against_a_stub(wh: tuple[Config, Connection], scenario: str) -> None:
    """POST /v1/invoices/{id}/finalize with the finalize key as idempotency key, once: a lost
    answer or a refusal is settled by reading the invoice back, a 503 is retried with the same key."""
    cfg, conn = wh
    issue(conn, SMALL[:1])
    (plan,), _ = plan_period(conn, PERIOD)
    stub_status = "open" if scenario in ("400", "open") else "draft"
    script = {"ok": ["ok"], "lost": ["lost"], "503": ["503", "ok"], "400": ["400"], "open": []}[scenario]
    with finalize_stub({"in_stub1": stub_status}, script) as (stub, url):
        pusher = StripePusher(conn, make_client(KEY, url), PERIOD, policy=_policy(4), api_key=KEY)
        # the invoice as the push last saw it ("open": already finalized by then)
        seen = {"id": "in_stub1", "status": "open" if scenario == "open" else "draft"}
        assert pusher.finalize(plan, seen) == "in_stub1"
        assert pusher.finalize(plan, seen) == "in_stub1"  # confirmed: never sent again
    assert stub.finalized == ([] if scenario in ("400", "open") else ["in_stub1"])
    posts = {"ok": 1, "lost": 1, "503": 2, "400": 1, "open": 0}[scenario]
    assert len(stub.posts) == posts
    assert {key for _, key, _ in stub.posts} <= {plan.finalize_key}
    assert all(b"auto_advance=true" in body for _, _, body in stub.posts)
    assert len(stub.gets) == {"ok": 0, "lost": 1, "503": 1, "400": 1, "open": 0}[scenario]
    (row,) = [r for r in _outbox(conn) if r["kind"] == "finalize"]
    assert (row["state"], row["stripe_id"], row["attempts"]) == ("confirmed", "in_stub1", posts)
    how = "created" if scenario in ("ok", "503") else "found_existing"
    assert row["confirmed_by"] == how and pusher.report.by_kind["finalize"][how] == 1


# ---------------------------------------------------------------------------------------------
# against localstripe


@pytest.mark.stripe_peer
def test_push_matches_the_ledger(localstripe_url: str, wh: tuple[Config, Connection]) -> None:
    cfg, conn = wh
    issue(conn, SMALL)
    r = _push(wh, localstripe_url)
    assert r.failed == 0, r.errors
    assert (r.created, r.found_existing, r.confirmed) == (SMALL_OBJECTS, 0, SMALL_OBJECTS)
    assert r.by_kind["customer"]["created"] == 3 and r.by_kind["invoice"]["created"] == 3
    assert r.by_kind["invoice_item"]["created"] == 7 and r.by_kind["finalize"]["created"] == 0
    assert r.skipped == 2  # the voided invoice, the zero-amount storage line
    assert any("KWD total 9878" in w for w in r.warnings)  # three-decimal, last digit not 0
    stripe = make_client(KEY, localstripe_url)
    state = stripe_state(stripe)
    _check_stripe_matches_ledger(state, [i for i in SMALL if i.period == PERIOD], r)
    rows = _outbox(conn)
    assert Counter(x["kind"] for x in rows) == {"customer": 3, "invoice_item": 7, "invoice": 3}
    assert {(x["state"], x["attempts"], x["confirmed_by"]) for x in rows} == {("confirmed", 1, "created")}
    assert all(x["ledger_as_of"] is not None and x["payload_hash"] for x in rows)
    by_key = {x["object_key"]: x for x in rows}
    for li in (li for lines in state["lines"].values() for li in lines if li["metadata"].get("meterline_key")):
        assert by_key[li["metadata"]["meterline_key"]]["stripe_id"] == li["invoice_item"]
    jpy = next(x for x in rows if x["kind"] == "invoice" and x["currency"] == "JPY")
    assert jpy["amount_minor"] == jpy["stripe_amount"] == 4234  # JPY: exponent 0, as is

    # the next period of the same account: its customer comes from the outbox, nothing else moves
    r2 = _push(wh, localstripe_url, period="2026-11")
    assert r2.failed == 0, r2.errors
    assert (r2.created, r2.by_kind["customer"]["created"]) == (3, 0)  # 2 items + 1 invoice
    after = stripe_state(stripe)
    _check_stripe_matches_ledger(after, SMALL, r, r2)
    assert r2.invoices["inv_acct_a_2026-11"]["stripe_customer_id"] == r.invoices["inv_acct_a_2026-10"]["stripe_customer_id"]


@pytest.mark.stripe_peer
def test_reruns_and_a_lost_outbox_create_nothing(localstripe_url: str, wh: tuple[Config, Connection]) -> None:
    cfg, conn = wh
    issue(conn, SMALL)
    first = _push(wh, localstripe_url)
    assert first.failed == 0 and first.created == SMALL_OBJECTS
    stripe = make_client(KEY, localstripe_url)
    before = _ids(stripe_state(stripe))
    outbox = _outbox(conn)
    with proxy_to(localstripe_url) as (proxy, url):
        for _ in range(3):
            r = _push(wh, url)
            assert (r.created, r.found_existing, r.confirmed, r.failed) == (0, 0, SMALL_OBJECTS, 0)
            assert r.skipped == 2
            assert {k: v["stripe_invoice_id"] for k, v in r.invoices.items()} == \
                {k: v["stripe_invoice_id"] for k, v in first.invoices.items()}
    assert proxy.requests == []  # a fully pushed period makes no Stripe call at all
    assert _ids(stripe_state(stripe)) == before
    assert _outbox(conn) == outbox

    # the outbox is lost (a restored warehouse, another machine): the metadata lookups find
    # every object (localstripe ignores idempotency keys, so nothing else could)
    conn.execute('DELETE FROM "ledger"."stripe_outbox"')
    r = _push(wh, localstripe_url)
    assert (r.created, r.found_existing, r.confirmed, r.failed) == (0, SMALL_OBJECTS, SMALL_OBJECTS, 0)
    assert _ids(stripe_state(stripe)) == before
    assert {(x["object_key"], x["stripe_id"]) for x in _outbox(conn)} == \
        {(x["object_key"], x["stripe_id"]) for x in outbox}


@pytest.mark.stripe_peer
def test_lost_responses_after_success_are_found_not_repeated(localstripe_url: str,
                                                            wh: tuple[Config, Connection]) -> None:
    """The first create of each kind reaches Stripe and succeeds, then its answer is lost (a 500
    or a closed connection); the retry looks the object up and confirms it."""
    cfg, conn = wh
    invoices = SMALL[:3]
    issue(conn, invoices)
    lose = {("POST", "/v1/customers"): "lost_500", ("POST", "/v1/invoiceitems"): "lost_drop",
            ("POST", "/v1/invoices"): "lost_500", ("POST", "/v1/invoices/{in}"): "lost_drop"}
    with proxy_to(localstripe_url, script=lambda m, path, n: lose.get((m, path)) if n == 1 else None) as (proxy, url):
        r = _push(wh, url)
    assert r.failed == 0, r.errors
    assert proxy.post_counts["lost_500"] == 2 and proxy.post_counts["lost_drop"] == 2
    # customer, invoice item and invoice of the first invoice were found; the metadata update is
    # simply repeated (it changes nothing the second time)
    assert r.found_existing == 3 and r.created == SMALL_OBJECTS - 3
    assert {k: r.by_kind[k]["found_existing"] for k in ("customer", "invoice_item", "invoice")} == \
        {"customer": 1, "invoice_item": 1, "invoice": 1}
    _check_stripe_matches_ledger(stripe_state(make_client(KEY, localstripe_url)), invoices, r)
    found = [x for x in _outbox(conn) if x["confirmed_by"] == "found_existing"]
    assert len(found) == 3 and all(x["attempts"] == 1 and x["last_error"] is None for x in found)


@pytest.mark.stripe_peer
def test_outage_mid_run_then_resume(localstripe_url: str, wh: tuple[Config, Connection]) -> None:
    """Stripe goes away in the middle of a push (the last request it handled never answered):
    the objects it did not confirm are failed, in state sent with their error; the next run
    finishes the period without a duplicate."""
    cfg, conn = wh
    invoices = SMALL[:3]
    issue(conn, invoices)
    seen = {"n": 0}

    def outage(method: str, path: str, n: int) -> str | None:
        seen["n"] += 1
        return None if seen["n"] < 25 else "lost_drop" if seen["n"] == 25 else "500"

    with proxy_to(localstripe_url, script=outage) as (_, url):
        first = _push(wh, url, attempts=3)
    assert first.failed > 0 and first.errors and first.confirmed + first.failed == SMALL_OBJECTS
    stuck = [x for x in _outbox(conn) if x["state"] != "confirmed"]
    assert stuck and all(x["last_error"] for x in stuck)
    assert any(x["state"] == "sent" for x in stuck)
    second = _push(wh, localstripe_url)
    assert second.failed == 0 and second.confirmed == SMALL_OBJECTS
    assert first.created + second.created + second.found_existing == SMALL_OBJECTS
    _check_stripe_matches_ledger(stripe_state(make_client(KEY, localstripe_url)), invoices, second)


@pytest.mark.stripe_peer
def test_guards_stop_one_invoice_not_the_period(localstripe_url: str, wh: tuple[Config, Connection]) -> None:
    """A customer that already exists is reused; a stray pending item on it (the invoice would
    take it) fails that invoice only; a ledger changed after the push is refused, not re-pushed."""
    cfg, conn = wh
    issue(conn, SMALL[:3])
    stripe = make_client(KEY, localstripe_url)
    cus_b = stripe.v1.customers.create(params={"metadata": {"account_id": "acct_b"}})
    stray = stripe.v1.invoice_items.create(params={"customer": cus_b.id, "amount": 1, "currency": "jpy"})
    r = _push(wh, localstripe_url)
    assert r.invoices["inv_acct_b_2026-10"]["state"] == "failed"
    assert stray.id in r.invoices["inv_acct_b_2026-10"]["error"] and "pending" in r.errors[0]
    assert r.invoices["inv_acct_b_2026-10"]["stripe_customer_id"] == cus_b.id
    assert r.by_kind["customer"] == {"created": 2, "found_existing": 1, "confirmed": 3, "failed": 0}
    assert r.failed == 1 and r.by_kind["invoice"]["failed"] == 1  # its items exist, its invoice not
    state = stripe_state(stripe)
    assert {i["metadata"]["account_id"] for i in state["invoices"]} == {"acct_a", "acct_c"}
    assert stray.id in {i["id"] for i in state["pending_items"]}

    # the ledger changes after the push (it never should): the invoice is refused, nothing sent
    conn.execute("""UPDATE "ledger"."issued_invoice_lines" SET amount_minor = 4322
                    WHERE account_id = 'acct_a' AND category = 'api_calls'""")
    conn.execute("""UPDATE "ledger"."issued_invoices" SET total_minor = total_minor + 1
                    WHERE account_id = 'acct_a'""")
    before = _ids(stripe_state(stripe))
    again = _push(wh, localstripe_url)
    assert again.invoices["inv_acct_a_2026-10"]["state"] == "failed"
    assert "ledger changed after it was pushed" in again.invoices["inv_acct_a_2026-10"]["error"]
    assert again.invoices["inv_acct_c_2026-10"]["state"] == "confirmed" and again.created == 0
    assert _ids(stripe_state(stripe)) == before


def _world(n: int, seed: int) -> list[Invoice]:
    rng = random.Random(seed)
    currencies = ["USD", "EUR", "JPY", "KWD"]
    out = []
    for i in range(n):
        lines = [("base_fee", "flat_fee", 1, rng.randint(1000, 9000))]
        for category in ("api_calls", "storage", "errors"):
            quantity = rng.randint(1, 10**9)
            lines.append((category, "usage", quantity, rng.randint(1, 10**6)))
        out.append(Invoice(f"acct_{i:04d}", currencies[i % len(currencies)], lines))
    return out


@pytest.mark.stripe_peer
def test_thirty_percent_faults_lose_and_duplicate_nothing(localstripe_url: str,
                                                          wh: tuple[Config, Connection]) -> None:
    """60 invoices × 4 lines (360 objects, about a thousand requests) through 30% injected faults:
    500s, 429s, timeouts, and answers lost after success. Every object exactly once, none missing."""
    cfg, conn = wh
    invoices = _world(60, seed=7)
    issue(conn, invoices)
    total = 60 + 60 * 4 + 60
    with proxy_to(localstripe_url, seed=20261101, rate=0.3, stall=0.35) as (proxy, url):
        r = _push(wh, url, timeout=0.3)
    assert r.failed == 0, r.errors[:3]
    assert r.created + r.found_existing == r.confirmed == total
    assert r.found_existing > 0  # lost answers were found by the lookups
    assert all(proxy.counts[k] > 0 for k in ("500", "429", "stall", "lost_500", "lost_drop")), proxy.counts
    assert proxy.post_counts["lost_500"] + proxy.post_counts["lost_drop"] >= 20, proxy.post_counts
    assert sum(proxy.counts.values()) > 700
    stripe = make_client(KEY, localstripe_url)  # straight to the stand-in, no faults
    state = stripe_state(stripe)
    _check_stripe_matches_ledger(state, invoices, r)
    assert len(state["invoices"]) == 60 and len(state["customers"]) == 60
    # issue 10's invariant 4 (tests/invariants.py): the outbox's confirmed invoices are the
    # Stripe invoices one to one, with the ledger's totals. (The warehouse holds the ledger
    # only, no marts: invariants 1-3 are checked where the pipeline builds them.)
    pushed = stripe_one_to_one(conn, stripe)
    print(pushed)
    assert pushed.violations == [] and pushed.counted == {
        "confirmed in outbox": 60, "Stripe invoices with a key": 60}
    rerun = _push(wh, localstripe_url)
    assert (rerun.created, rerun.found_existing, rerun.failed) == (0, 0, 0)
    assert stripe_one_to_one(conn, stripe).violations == []


@pytest.mark.stripe_peer
def test_cli_push(localstripe_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  capsys: pytest.CaptureFixture[str]) -> None:
    from meterline.cli import main

    for name in [k for k in os.environ if k.startswith("METERLINE_")]:
        monkeypatch.delenv(name)
    (tmp_path / "dead").mkdir()
    dead = write_config(tmp_path / "dead", f'[sources]\nstripe_api_base = "http://127.0.0.1:{free_port()}"\n'
                        "stripe_max_attempts = 2\n")
    live = write_config(tmp_path, f'[sources]\nstripe_api_base = "{localstripe_url}"\n')
    for toml in (dead, live):
        conn = open_connection(load_config(toml, env={}).warehouse)
        ensure_raw(conn)
        issue(conn, SMALL[:3])
        conn.close()

    def cli(toml: Path, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--config", str(toml), *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, _, err = cli(live, "push", "--period", "2026-10", "--localstripe")
    assert code == 2 and "METERLINE_STRIPE_API_KEY" in err
    monkeypatch.setenv("METERLINE_STRIPE_API_KEY", KEY)
    code, _, err = cli(live, "push", "--period", "2026-13")
    assert code == 2 and err.count("\n") == 1 and "YYYY-MM" in err
    code, _, err = cli(live, "push", "--period", "2026-09")
    assert code == 2 and "not closed" in err
    code, out, err = cli(dead, "push", "--period", "2026-10", "--json")
    assert code == 3 and err.count("\n") == 1 and "not confirmed" in err and KEY not in err
    assert json.loads(out)["failed"] > 0
    code, out, err = cli(live, "push", "--period", "2026-10", "--localstripe", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["created"], summary["failed"]) == (SMALL_OBJECTS, 0)
    code, out, _ = cli(live, "push", "--period", "2026-10", "--localstripe")
    assert code == 0 and "0 created, 0 found existing, 13 confirmed" in out


@pytest.mark.postgres
@pytest.mark.stripe_peer
def test_push_on_postgres(localstripe_url: str, pg_url: str, tmp_path: Path) -> None:
    """The outbox's statements on PostgreSQL: a push, then a rerun that creates nothing."""
    cfg = load_config(write_config(tmp_path), env={"METERLINE_WAREHOUSE": pg_url})
    conn = open_connection(cfg.warehouse)
    try:
        ensure_raw(conn)
        issue(conn, SMALL)
        r = _push((cfg, conn), localstripe_url)
        assert (r.created, r.failed) == (SMALL_OBJECTS, 0), r.errors
        again = _push((cfg, conn), localstripe_url)
        assert (again.created, again.found_existing, again.confirmed) == (0, 0, SMALL_OBJECTS)
        rows = _outbox(conn)
        assert len(rows) == SMALL_OBJECTS and {x["state"] for x in rows} == {"confirmed"}
        _check_stripe_matches_ledger(stripe_state(make_client(KEY, localstripe_url)),
                                     [i for i in SMALL if i.period == PERIOD], r)
    finally:
        conn.close()


def test_the_push_and_dbt_agree_on_stripe_amount_factors() -> None:
    """The push multiplies (meterline.stripe_api) what dbt's Stripe staging divides (var
    stripe_amount_factors, macro stripe_minor): the two must name the same currencies and factors,
    or a pushed ISK invoice would come back as a 100x drift."""
    import yaml

    from meterline.dbt import DBT_PROJECT_DIR
    from meterline.stripe_api import STRIPE_AMOUNT_FACTOR

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    assert project["vars"]["stripe_amount_factors"] == STRIPE_AMOUNT_FACTOR == {"ISK": 100}


@pytest.mark.stripe_peer
def test_an_invoice_voided_after_its_push_is_voided_in_stripe_before_anything_else(
        localstripe_url: str, wh: tuple[Config, Connection]) -> None:
    """A void re-bills the invoice's charges on the next draft: its pushed Stripe invoice must be
    voided before the next period goes out, or the customer pays twice. Replay-safe: the void is
    an outbox row, and a rerun voids nothing again."""
    cfg, conn = wh
    issue(conn, SMALL)
    first = _push(wh, localstripe_url)
    assert first.failed == 0
    pushed = first.invoices["inv_acct_b_2026-10"]["stripe_invoice_id"]
    stripe = make_client(KEY, localstripe_url)
    assert stripe.v1.invoices.retrieve(pushed).status in ("draft", "open")  # localstripe: not finalized

    conn.execute('UPDATE "ledger"."issued_invoices" SET voided_at = ?, void_reason = ? WHERE invoice_id = ?',
                 [dt.datetime(2026, 11, 25), "wrong plan", "inv_acct_b_2026-10"])
    nov = _push(wh, localstripe_url, period="2026-11")
    assert nov.failed == 0, nov.errors
    assert nov.by_kind["void"]["created"] == 1 and nov.by_kind["invoice"]["created"] == 1
    # localstripe never finalizes: the invoice was a draft, and a draft is deleted, not voided
    with pytest.raises(stripe_sdk.InvalidRequestError):
        stripe.v1.invoices.retrieve(pushed)
    voids = [x for x in _outbox(conn) if x["kind"] == "void"]
    assert [(x["state"], x["stripe_id"], x["period"], x["invoice_id"]) for x in voids] == [
        ("confirmed", pushed, "2026-10", "inv_acct_b_2026-10")], voids
    assert voids[0]["object_key"].startswith("ml:void:ml:in:")
    with proxy_to(localstripe_url) as (proxy, url):  # a rerun: nothing voided or created again
        again = _push(wh, url, period="2026-11")
    assert (again.created, again.failed) == (0, 0) and proxy.requests == []


@pytest.mark.stripe_peer
def test_a_voided_invoice_stripe_has_collected_blocks_the_push(wh: tuple[Config, Connection]) -> None:
    """Stripe cannot void a paid invoice: the push stops (nothing pushed, the reason said) until
    a credit note covers it in Stripe."""
    cfg, conn = wh
    issue(conn, SMALL)
    conn.execute('UPDATE "ledger"."issued_invoices" SET voided_at = ?, void_reason = ? WHERE invoice_id = ?',
                 [dt.datetime(2026, 11, 25), "duplicate", "inv_acct_b_2026-10"])
    conn.execute(
        'INSERT INTO "ledger"."stripe_outbox" (object_key, kind, account_id, period, invoice_id, state, '
        "stripe_id, attempts) VALUES ('ml:in:inv_acct_b_2026-10:v1', 'invoice', 'acct_b', '2026-10', "
        "'inv_acct_b_2026-10', 'confirmed', 'in_paid', 1)")
    paid = {"id": "in_paid", "object": "invoice", "status": "paid", "total": 4234,
            "post_payment_credit_notes_amount": 0, "metadata": {}}
    with invoice_stub({"in_paid": paid}) as (stub, url):
        r = _push(wh, url, period="2026-11")
        assert r.failed == 1 and r.created == 0, r
        assert "in_paid is paid" in r.errors[0] and "credit note" in r.errors[0], r.errors
        assert all(m == "GET" for m, _ in stub.requests), stub.requests  # nothing voided, nothing created
        paid["post_payment_credit_notes_amount"] = 4234  # credited in Stripe: the push goes on
        r2 = _push(wh, url, period="2026-11")
        assert r2.by_kind["void"]["found_existing"] == 1, r2


@pytest.mark.stripe_peer
def test_an_open_stripe_invoice_is_voided_once(wh: tuple[Config, Connection]) -> None:
    """Against a stand-in with Stripe's rules (void open and uncollectible invoices only): the
    void is sent once, confirmed, and not sent again by a rerun."""
    cfg, conn = wh
    issue(conn, SMALL)
    conn.execute('UPDATE "ledger"."issued_invoices" SET voided_at = ?, void_reason = ? WHERE invoice_id = ?',
                 [dt.datetime(2026, 11, 25), "duplicate", "inv_acct_b_2026-10"])
    conn.execute(
        'INSERT INTO "ledger"."stripe_outbox" (object_key, kind, account_id, period, invoice_id, state, '
        "stripe_id, attempts) VALUES ('ml:in:inv_acct_b_2026-10:v1', 'invoice', 'acct_b', '2026-10', "
        "'inv_acct_b_2026-10', 'confirmed', 'in_open', 1)")
    invoice = {"id": "in_open", "object": "invoice", "status": "open", "total": 4234, "metadata": {}}
    with invoice_stub({"in_open": invoice}) as (stub, url):
        r = _push(wh, url, period="2026-11")
        assert r.by_kind["void"]["created"] == 1 and invoice["status"] == "void", r
        assert stub.requests.count(("POST", "/v1/invoices/in_open/void")) == 1
        stub.requests.clear()
        _push(wh, url, period="2026-11")
        assert ("POST", "/v1/invoices/in_open/void") not in stub.requests


def test_localstripe_mode_is_refused_against_the_real_stripe(wh: tuple[Config, Connection]) -> None:
    cfg, conn = wh
    issue(conn, SMALL)
    for base, key in (("https://api.stripe.com", KEY), ("http://127.0.0.1:1", "sk_live_canary")):
        with pytest.raises(ConfigError, match="localstripe mode is for the localstripe stand-in"):
            push_period(conn, cfg, PERIOD, api_base=base, api_key=key, localstripe=True)
    assert _outbox(conn) == []  # refused before anything was written
