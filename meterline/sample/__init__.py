"""The deterministic sample world (metering, billing, Stripe) with planted discrepancies."""

from meterline.sample.generate import generate
from meterline.sample.stripe_server import serve_stripe_fixture

__all__ = ["generate", "serve_stripe_fixture"]
