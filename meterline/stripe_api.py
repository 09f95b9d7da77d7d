"""The Stripe API client and retry policy every stage shares: ingest reads Stripe with it and the
invoice push (exports/stripe_push.py) writes with it, so both redact the key, time out and back
off the same way. meterline's own retries, not the SDK's (DECISIONLOG "Stripe retries are
meterline's, not the SDK's").
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from meterline.errors import SourceError

log = logging.getLogger("meterline.ingest.stripe")

DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_TIMEOUT_SECONDS = 80.0

# Stripe's amount = ledger (ISO 4217) minor units × factor, for the currencies Stripe keeps as
# two-decimal where ISO says zero. The push multiplies; dbt's Stripe staging (macro stripe_minor,
# var stripe_amount_factors, which must agree: tested) divides.
STRIPE_AMOUNT_FACTOR: dict[str, int] = {"ISK": 100}

T = TypeVar("T")


class _RedactKey(logging.Filter):
    """Masks the API key in any record of the logger it sits on (belt and braces: neither
    meterline nor the SDK logs it, but the SDK logs response bodies at debug level)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "sk_***"), None
        return True


_redacted_keys: set[str] = set()
_redaction_lock = threading.Lock()


def _install_redaction(api_key: str) -> None:
    with _redaction_lock:
        if api_key in _redacted_keys:
            return
        _redacted_keys.add(api_key)
        for name in ("stripe", log.name):
            logging.getLogger(name).addFilter(_RedactKey(api_key))


def make_client(
    api_key: str, api_base: str, max_network_retries: int = 0,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Any:
    """A `StripeClient`; the SDK's own retries are off by default (see `call_with_retry`)."""
    import stripe

    if not api_key:
        raise SourceError("stripe source: no API key (set METERLINE_STRIPE_API_KEY)")
    _install_redaction(api_key)
    return stripe.StripeClient(
        api_key, base_addresses={"api": api_base}, max_network_retries=max_network_retries,
        http_client=stripe.new_default_http_client(timeout=timeout),
    )


def _redact(message: str, api_key: str) -> str:
    return message.replace(api_key, "sk_***") if api_key else message


@dataclass
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter.

    `sleep` and `clock` (the current time, timezone-aware, used only to turn a `Retry-After`
    HTTP date into a delay) are injectable for tests.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): half fixed, half random ("equal jitter")."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        with self._lock:
            return cap / 2 + self._rng.uniform(0, cap / 2)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            return str(value)
    return None


def _seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """`Retry-After` in seconds: delay-seconds, or an HTTP date (RFC 7231) minus `now`.

    A date in the past means "now" (0 s); a date without a zone is read as UTC. `now` defaults
    to the current time. Anything else (negative, unparsable) is None: back off instead.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        now = now or dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        return max(0.0, (when - now).total_seconds())
    return seconds if seconds >= 0 else None


def retry_decision(exc: Exception, now: dt.datetime | None = None) -> tuple[bool, float | None]:
    """(retry?, Retry-After seconds) for a Stripe error.

    `Stripe-Should-Retry: false` never retries and `true` always does; otherwise 429, 409
    (lock timeouts), 5xx, connection errors and timeouts are retried, other 4xx are not.
    `now` turns a `Retry-After` HTTP date into seconds (default: the current time).
    """
    import stripe

    headers = getattr(exc, "headers", None)
    should = (_header(headers, "stripe-should-retry") or "").strip().lower()
    if should == "false":
        return False, None
    retry_after = _seconds(_header(headers, "retry-after"), now)
    if should == "true":
        return True, retry_after
    if isinstance(exc, stripe.APIConnectionError):
        return True, retry_after
    status = getattr(exc, "http_status", None)
    if status is not None and (status in (409, 429) or status >= 500):
        return True, retry_after
    return False, None


def _describe(exc: Exception) -> str:
    import stripe

    status = getattr(exc, "http_status", None)
    kind = "timeout or connection error" if isinstance(exc, stripe.APIConnectionError) else (
        f"HTTP {status}" if status else type(exc).__name__)
    message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
    return f"{kind}: {message}"


def call_with_retry(fn: Callable[[], T], what: str, policy: RetryPolicy, api_key: str = "") -> T:
    """Run one Stripe API call, retrying what `retry_decision` allows, up to `max_attempts`."""
    import stripe

    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except stripe.StripeError as exc:
            retry, retry_after = retry_decision(exc, policy.clock())
            detail = _redact(_describe(exc), api_key)
            if not retry:
                raise SourceError(f"stripe source: {what}: {detail}") from None
            if attempt >= policy.max_attempts:
                raise SourceError(
                    f"stripe source: {what}: gave up after {attempt} attempts: {detail}"
                ) from None
            if retry_after is not None:
                delay = min(retry_after, policy.max_retry_after)
            else:
                delay = policy.backoff(attempt)
            log.warning("stripe: %s: %s; retry %d of %d in %.2f s", what, detail, attempt,
                        policy.max_attempts - 1, delay)
            policy.sleep(delay)


# ---------------------------------------------------------------------------------------------
# reading
