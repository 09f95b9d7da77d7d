"""The local Stripe fixture server, read through the real `stripe` SDK."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from meterline.sample import generate, serve_stripe_fixture

RESOURCES = ("customers", "invoices", "charges", "refunds", "balance_transactions", "payouts")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stripe_world")
    generate(out, seed=11, accounts=12, days=34, start=dt.date(2026, 10, 1))
    return out


@pytest.fixture(scope="module")
def base_url(world: Path) -> Iterator[str]:
    with serve_stripe_fixture(world / "sources" / "stripe") as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_x", base_addresses={"api": base_url}, max_network_retries=0)


def stored(world: Path, resource: str) -> list[dict[str, Any]]:
    return json.loads((world / "sources" / "stripe" / f"{resource}.json").read_text())


def newest_first(objects: list[dict[str, Any]]) -> list[str]:
    return [o["id"] for o in sorted(objects, key=lambda o: (o["created"], o["id"]), reverse=True)]


def raw_get(base_url: str, path: str, key: str | None = "sk_test_x") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(base_url + path)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_sdk_pages_every_resource_once_newest_first(
    world: Path, client: stripe.StripeClient
) -> None:
    services = {
        "customers": client.v1.customers,
        "invoices": client.v1.invoices,
        "charges": client.v1.charges,
        "refunds": client.v1.refunds,
        "balance_transactions": client.v1.balance_transactions,
        "payouts": client.v1.payouts,
    }
    for resource, service in services.items():
        seen = [o.id for o in service.list(params={"limit": 3}).auto_paging_iter()]
        assert seen == newest_first(stored(world, resource)), resource
        assert len(seen) == len(set(seen))


def test_list_shape_and_embedded_lines(base_url: str, world: Path) -> None:
    status, body = raw_get(base_url, "/v1/invoices?limit=2&expand[]=data.customer")
    assert status == 200
    assert body["object"] == "list" and body["url"] == "/v1/invoices" and body["has_more"] is True
    assert len(body["data"]) == 2
    invoice = body["data"][0]
    lines = invoice["lines"]
    assert lines["object"] == "list" and lines["url"] == f"/v1/invoices/{invoice['id']}/lines"
    assert lines["total_count"] == len(lines["data"]) <= 10 and lines["has_more"] is False
    status, body = raw_get(base_url, "/v1/invoices")
    assert len(body["data"]) == min(10, len(stored(world, "invoices")))


def test_created_and_customer_filters(world: Path, client: stripe.StripeClient) -> None:
    charges = stored(world, "charges")
    created = sorted(c["created"] for c in charges)
    lo, hi = created[2], created[-3]
    seen = [
        c.id
        for c in client.v1.charges.list(
            params={"limit": 2, "created": {"gte": lo, "lt": hi}}
        ).auto_paging_iter()
    ]
    assert seen == newest_first([c for c in charges if lo <= c["created"] < hi])
    seen = [
        c.id
        for c in client.v1.charges.list(
            params={"created": {"gt": lo, "lte": hi}}
        ).auto_paging_iter()
    ]
    assert seen == newest_first([c for c in charges if lo < c["created"] <= hi])
    exact = client.v1.charges.list(params={"created": lo})
    assert [c.id for c in exact] == newest_first([c for c in charges if c["created"] == lo])
    invoice = stored(world, "invoices")[0]
    mine = client.v1.invoices.list(params={"customer": invoice["customer"]})
    assert [i.id for i in mine] == newest_first(
        [i for i in stored(world, "invoices") if i["customer"] == invoice["customer"]]
    )


def test_ending_before_pages_backwards(world: Path, client: stripe.StripeClient) -> None:
    ids = newest_first(stored(world, "balance_transactions"))
    page = client.v1.balance_transactions.list(params={"limit": 3, "ending_before": ids[-1]})
    assert [b.id for b in page] == ids[-4:-1] and page.has_more is True
    backwards = list(
        client.v1.balance_transactions.list(
            params={"limit": 4, "ending_before": ids[-1]}
        ).auto_paging_iter()
    )
    assert [b.id for b in backwards] == list(reversed(ids[:-1]))


def test_retrieve_and_not_found(world: Path, client: stripe.StripeClient, base_url: str) -> None:
    invoice = stored(world, "invoices")[0]
    got = client.v1.invoices.retrieve(invoice["id"])
    assert got.id == invoice["id"] and got.total == invoice["total"]
    assert got.metadata["account_id"] == invoice["metadata"]["account_id"]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.retrieve("in_doesnotexist")
    assert err.value.http_status == 404 and err.value.code == "resource_missing"
    status, body = raw_get(base_url, "/v1/charges/ch_nope")
    assert status == 404
    assert (
        body["error"]["type"] == "invalid_request_error"
        and body["error"]["code"] == "resource_missing"
    )
    assert "ch_nope" in body["error"]["message"]
    status, body = raw_get(base_url, "/v1/coupons")
    assert status == 404 and body["error"]["type"] == "invalid_request_error"
    status, body = raw_get(base_url, "/v1/invoices?limit=101")
    assert status == 400 and body["error"]["param"] == "limit"
    status, body = raw_get(base_url, "/v1/invoices?starting_after=in_missing")
    assert status == 400 and body["error"]["param"] == "starting_after"


def test_requests_need_a_secret_key(base_url: str) -> None:
    for key in (None, "pk_test_x", "sk_"):
        status, body = raw_get(base_url, "/v1/customers", key=key)
        assert status == 401
        assert (
            body["error"]["type"] == "invalid_request_error"
            and "API key" in body["error"]["message"]
        )
    bad = stripe.StripeClient("rk_test_x", base_addresses={"api": base_url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as err:
        bad.v1.customers.list()
    assert err.value.http_status == 401


def test_invoice_lines_past_ten_are_paged(tmp_path: Path) -> None:
    lines = [
        {
            "id": f"il_{i:03d}",
            "object": "line_item",
            "amount": 100 + i,
            "currency": "usd",
            "quantity": i,
            "description": f"line {i}",
            "period": {"start": 1790000000, "end": 1792000000},
            "metadata": {"category": f"c{i}", "account_id": "acct_0001"},
        }
        for i in range(25)
    ]
    invoices = [
        {
            "id": f"in_{n}",
            "object": "invoice",
            "created": 1792000000 + n,
            "customer": "cus_1",
            "currency": "usd",
            "livemode": False,
            "metadata": {"account_id": "acct_0001", "period": "2026-10"},
            "total": sum(line["amount"] for line in lines),
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/in_{n}/lines",
            },
        }
        for n in range(3)
    ]
    (tmp_path / "invoices.json").write_text(json.dumps(invoices))
    with serve_stripe_fixture(tmp_path) as url:
        client = stripe.StripeClient(
            "sk_test_x", base_addresses={"api": url}, max_network_retries=0
        )
        listed = list(client.v1.invoices.list(params={"limit": 2}).auto_paging_iter())
        assert [i.id for i in listed] == ["in_2", "in_1", "in_0"]
        first = listed[0]
        assert len(first.lines.data) == 10 and first.lines.has_more is True
        assert first.lines.total_count == 25
        paged = [line.id for line in first.lines.auto_paging_iter()]
        assert paged == [line["id"] for line in lines]
        via_service = client.v1.invoices.line_items.list(
            "in_1", params={"limit": 7}
        ).auto_paging_iter()
        assert [line.id for line in via_service] == [line["id"] for line in lines]
        assert client.v1.customers.list().data == []  # a missing resource file is an empty list
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.invoices.line_items.list("in_nope")
        assert err.value.http_status == 404


def test_lifecycle_resources_and_event_filters(world: Path, client: stripe.StripeClient,
                                               base_url: str) -> None:
    """Subscriptions, disputes, credit notes and events: listed like the others; events filter
    by `type` (with `*`) and `types[]`; an invoice inside an event embeds its first page of lines."""
    for resource in ("subscriptions", "disputes", "credit_notes", "events"):
        got = [o.id for o in getattr(client.v1, resource).list(params={"limit": 3}).auto_paging_iter()]
        assert got == newest_first(stored(world, resource)), resource
    events = stored(world, "events")
    paid = client.v1.events.list(params={"type": "invoice.*", "limit": 100}).data
    assert paid and {e.type for e in paid} <= {"invoice.finalized", "invoice.paid"}
    assert len(paid) == sum(e["type"].startswith("invoice.") for e in events)
    wanted = ["charge.refunded", "refund.created"]
    got = client.v1.events.list(params={"types": wanted, "limit": 100}).data
    assert sorted(e.id for e in got) == sorted(e["id"] for e in events if e["type"] in wanted)
    status, body = raw_get(base_url, "/v1/charges?type=charge.refunded")
    assert status == 400 and body["error"]["param"] == "type"
    sub = stored(world, "subscriptions")[0]
    mine = client.v1.subscriptions.list(params={"customer": sub["customer"]}).data
    assert sub["id"] in {s.id for s in mine} and all(s.customer == sub["customer"] for s in mine)
    # the final state of every object is what its latest event carries
    final = {o["id"]: o for r in RESOURCES + ("subscriptions", "disputes") for o in stored(world, r)}
    latest: dict[str, tuple[tuple[int, str], dict[str, Any]]] = {}
    for e in events:
        obj = e["data"]["object"]
        if obj["id"] not in latest or (e["created"], e["id"]) > latest[obj["id"]][0]:
            latest[obj["id"]] = ((e["created"], e["id"]), obj)
    assert latest and all(final[i] == obj for i, (_, obj) in latest.items())
    assert len(stored(world, "disputes")) == 1 and stored(world, "credit_notes") == []
