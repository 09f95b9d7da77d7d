"""The Stripe extractor against localstripe: an independent fake Stripe nobody here wrote."""

from __future__ import annotations

import datetime as dt

import pytest

from ingest.stripe import extract_stripe, make_client

pytestmark = pytest.mark.stripe_peer


def _day(epoch: int) -> dt.date:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).date()


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
        tables = extract_stripe(c, day, api_key=key, server_filters=False)
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
    refunds = {r["id"]: r for r in got["stripe_refunds"]}
    assert refunds[rf.id]["charge_id"] == ch.id and refunds[rf.id]["amount"] == 1200
    # the key never lands in the data
    for rows in got.values():
        for r in rows:
            assert key not in str(r)
