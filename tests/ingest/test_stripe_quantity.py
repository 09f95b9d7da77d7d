"""A Stripe line meterline pushed bills an exact amount (quantity 1 in Stripe) and carries the
usage quantity in metadata: ingest reads that quantity back, so reconciliation compares it."""

from ingest.stripe import line_row


def test_metadata_quantity_wins_over_stripe_quantity_1() -> None:
    pushed = {"id": "il_1", "quantity": 1, "amount": 1234, "currency": "usd",
              "metadata": {"category": "api_calls", "quantity": "98765"}}
    assert line_row("in_1", pushed)["quantity"] == 98765
    native = {"id": "il_2", "quantity": 7, "amount": 70, "currency": "usd", "metadata": {}}
    assert line_row("in_1", native)["quantity"] == 7
    garbled = {"id": "il_3", "quantity": 3, "amount": 30, "currency": "usd", "metadata": {"quantity": "x"}}
    assert line_row("in_1", garbled)["quantity"] == 3
