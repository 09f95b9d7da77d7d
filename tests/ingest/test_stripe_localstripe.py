"""The Stripe extractor against localstripe: an independent fake Stripe nobody here wrote.

localstripe stamps objects with its own clock and lacks some list filters (`created` on most
resources) and resources (disputes, credit notes), so these tests pull second-wide intervals
with `server_filters=False` and the resources it has.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import pytest

from ingest.stripe import (
    RetryPolicy,
    StripeReader,
    extract_stripe,
    extract_stripe_interval,
    extract_stripe_resync,
    make_client,
)

pytestmark = pytest.mark.stripe_peer

LOCALSTRIPE_RESOURCES = ["customers", "subscriptions", "invoices", "charges", "refunds",
                         "balance_transactions", "payouts"]


def _day(epoch: int) -> dt.date:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).date()


def _at(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).replace(tzinfo=None)


def _next_second() -> int:
    """Wait until the clock enters a new second; return it (later objects are created at >= it)."""
    now = time.time()
    target = int(now) + 1
    time.sleep(target - now + 0.05)
    return target


def test_extract_against_localstripe(localstripe_url: str) -> None:
    key = "sk_test_localstripe_canary_123"
    c = make_client(key, localstripe_url, max_network_retries=0)
    prod = c.v1.products.create(params={"name": "platform", "type": "service"})
    plan = c.v1.plans.create(params={"amount": 2900, "currency": "usd", "interval": "month", "product": prod.id})
    invoices, created = {}, []
    for i in range(3):
        cus = c.v1.customers.create(params={"email": f"billing{i}@example.com",
                                            "metadata": {"account_id": f"acct_{i:04d}"}})
        pm = c.v1.payment_methods.create(params={"type": "card", "card": {
            "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
        c.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
        c.v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": pm.id}})
        c.v1.subscriptions.create(params={"customer": cus.id, "items": [{"plan": plan.id}]})
        n_items = 12 if i == 0 else 2  # more lines than the first embedded page holds
        for j in range(n_items):
            c.v1.invoice_items.create(params={
                "customer": cus.id, "amount": 100 + j, "currency": "usd",
                "description": f"usage {j}", "metadata": {"category": "error"}})
        inv = c.v1.invoices.create(params={"customer": cus.id,
                                           "metadata": {"account_id": f"acct_{i:04d}", "period": "2026-10"}})
        # localstripe drops metadata given at creation; set it the other documented way
        inv = c.v1.invoices.update(inv.id, params={
            "metadata": {"account_id": f"acct_{i:04d}", "period": "2026-10"}})
        invoices[inv.id] = inv
        created.append(inv.created)
    ch = c.v1.charges.create(params={"amount": 5000, "currency": "usd", "customer": cus.id})
    rf = c.v1.refunds.create(params={"charge": ch.id, "amount": 1200})
    created += [ch.created, rf.created]

    got: dict[str, list[dict]] = {}
    for day in sorted({_day(t) for t in created}):
        # localstripe has no `created` list filter on every resource: filter client-side
        tables = extract_stripe(c, day, api_key=key, server_filters=False,
                                resources=LOCALSTRIPE_RESOURCES)
        for name, table in tables.items():
            got.setdefault(name, []).extend(table.to_pylist())

    # every invoice localstripe holds (ours plus the subscriptions' own), each exactly once
    everything = {i.id: i for i in c.v1.invoices.list(params={"limit": 100}).auto_paging_iter()}
    ids = [r["id"] for r in got["stripe_invoices"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(everything) and set(invoices) <= set(ids)
    by_id = {r["id"]: r for r in got["stripe_invoices"]}
    for inv_id, inv in invoices.items():
        assert by_id[inv_id]["total"] == inv.total
        assert by_id[inv_id]["period"] == "2026-10"
        assert by_id[inv_id]["account_id"] == inv.metadata["account_id"]
        lines = [r for r in got["stripe_invoice_lines"] if r["invoice_id"] == inv_id]
        assert len(lines) == len({r["id"] for r in lines})
        assert sum(r["amount"] for r in lines) == inv.total
    first = next(iter(invoices))
    truth = {li.id for li in c.v1.invoices.line_items.list(first, params={"limit": 100}).auto_paging_iter()}
    assert len(truth) > 10  # more than the first embedded page
    assert {r["id"] for r in got["stripe_invoice_lines"] if r["invoice_id"] == first} == truth
    customers = {r["account_id"] for r in got["stripe_customers"]}
    assert {"acct_0000", "acct_0001", "acct_0002"} <= customers
    assert ch.id in {r["id"] for r in got["stripe_charges"]}
    assert len(got["stripe_subscriptions"]) == 3
    refunds = {r["id"]: r for r in got["stripe_refunds"]}
    assert refunds[rf.id]["charge_id"] == ch.id and refunds[rf.id]["amount"] == 1200
    # the key never lands in the data
    for rows in got.values():
        for r in rows:
            assert key not in str(r)


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(r["id"] for r in rows)


def test_hundreds_of_objects_over_pages_then_updates_and_refunds(
    localstripe_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two consecutive pulls over many small pages: every object exactly once; an update made
    after the first pull (customer e-mail) arrives with the second, through the Events API;
    refunds made after the first pull are new objects of the second."""
    caplog.set_level(logging.DEBUG)
    key = "sk_test_localstripe_pages_canary_456"
    c = make_client(key, localstripe_url)
    t0 = int(time.time())
    customers = [c.v1.customers.create(params={"email": f"c{i}@example.com",
                                               "metadata": {"account_id": f"acct_{i:04d}"}})
                 for i in range(150)]
    payer = customers[0]
    pm = c.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    c.v1.payment_methods.attach(pm.id, params={"customer": payer.id})
    charges = [c.v1.charges.create(params={"amount": 1000 + i, "currency": "usd",
                                           "customer": payer.id, "source": pm.id})
               for i in range(120)]
    early_refunds = [c.v1.refunds.create(params={"charge": ch.id, "amount": 100})
                     for ch in charges[:10]]
    t1 = _next_second()

    reader = StripeReader(c, key, server_filters=False, page_limit=7, max_concurrency=4,
                          retry=RetryPolicy(sleep=lambda s: None))
    first = {k: v.to_pylist() for k, v in
             extract_stripe_interval(reader, _at(t0), _at(t1), LOCALSTRIPE_RESOURCES).items()}
    assert _ids(first["stripe_customers"]) == sorted(x.id for x in customers)
    assert _ids(first["stripe_charges"]) == sorted(x.id for x in charges)
    assert _ids(first["stripe_refunds"]) == sorted(x.id for x in early_refunds)
    assert len(first["stripe_balance_transactions"]) == 130  # 120 charges + 10 refunds
    assert {r["amount"] for r in first["stripe_charges"]} == {1000 + i for i in range(120)}
    cursor = {r["resource"]: r for r in first["stripe_cursor"]}
    assert cursor["customers"]["objects"] == 150 and cursor["charges"]["objects"] == 120
    assert cursor["events"]["objects"] == len(first["stripe_events"]) >= 150

    # after the first pull: five customers change their e-mail, ten more charges get refunds
    changed = {cus.id: f"new{i}@example.com" for i, cus in enumerate(customers[10:15])}
    for cus_id, email in changed.items():
        c.v1.customers.update(cus_id, params={"email": email})
    late_refunds = [c.v1.refunds.create(params={"charge": ch.id, "amount": 250})
                    for ch in charges[50:60]]
    t2 = _next_second()

    second = {k: v.to_pylist() for k, v in
              extract_stripe_interval(reader, _at(t1), _at(t2), LOCALSTRIPE_RESOURCES).items()}
    # the updated customers (created before the interval) come from their customer.updated events
    assert {r["id"]: r["email"] for r in second["stripe_customers"]} == changed
    assert {r["type"] for r in second["stripe_events"]} >= {"customer.updated"}
    assert _ids(second["stripe_refunds"]) == sorted(x.id for x in late_refunds)
    assert {r["charge_id"] for r in second["stripe_refunds"]} == {ch.id for ch in charges[50:60]}
    assert not second["stripe_charges"]  # localstripe sends no charge.refunded event
    # nothing pulled twice: the first pull's objects are not in the second (other than updates)
    assert not set(_ids(first["stripe_refunds"])) & set(_ids(second["stripe_refunds"]))

    # a resync over both intervals holds the current version of everything, once
    everything = {k: v.to_pylist() for k, v in
                  extract_stripe_resync(reader, _at(t0), _at(t2), LOCALSTRIPE_RESOURCES).items()}
    emails = {r["id"]: r["email"] for r in everything["stripe_customers"]}
    assert len(emails) == 150 and all(emails[i] == e for i, e in changed.items())
    assert _ids(everything["stripe_refunds"]) == sorted(x.id for x in early_refunds + late_refunds)
    assert "stripe_events" not in everything
    assert key not in caplog.text
