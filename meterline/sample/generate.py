"""The deterministic sample world: metering store, billing database and Stripe, with planted faults.

`generate(out_dir, seed=...)` writes

- `sources/metering.duckdb` (`usage_hourly`) and `sources/billing.duckdb` (`accounts`, `plans`,
  `subscriptions`, `price_books`, `usage_counters`, `credits`, `commitments`) exactly as
  docs/sources.md specifies, or the
  same tables into PostgreSQL schemas `<prefix>_metering` / `<prefix>_billing`;
- `sources/stripe/<resource>.json` (Stripe API objects, what the billing system pushed to Stripe);
- `sources/expected_invoices.json` (the billing system's invoices before any planted fault);
- `manifest.json` (world parameters and the planted discrepancies with the findings a correct
  pipeline must report).

Same arguments give byte-identical JSON files and identical table contents: every random draw
comes from streams seeded by `seed`, nothing reads the wall clock, and every output is sorted.
Money is only ever `int` (minor units) or `Decimal`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import random
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from meterline.source_contract import BILLING_TABLES, METERING_TABLES

GENERATOR_VERSION = 2  # 2: billing credits and commitments

CATEGORIES: tuple[str, ...] = (
    "error",
    "transaction",
    "attachment",
    "replay",
    "span",
    "log_byte",
    "profile",
    "monitor_seat",
)
BYTE_CATEGORIES = frozenset({"attachment", "log_byte"})
OTHER_OUTCOMES: tuple[tuple[str, float], ...] = (
    ("filtered", 0.20),
    ("rate_limited", 0.06),
    ("invalid", 0.03),
)
CURRENCIES: tuple[tuple[str, float], ...] = (
    ("USD", 0.60),
    ("EUR", 0.25),
    ("JPY", 0.10),
    ("KWD", 0.05),
)
CURRENCY_EXPONENT = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}
# price multiplier against USD (unit prices are rounded to 4 significant digits, 12 decimals max)
CURRENCY_RATE = {
    "USD": Decimal("1"),
    "EUR": Decimal("0.92"),
    "JPY": Decimal("150"),
    "KWD": Decimal("0.307"),
}
BASE_FEE_MINOR = {
    "USD": {"team": 2900, "business": 8900},
    "EUR": {"team": 2700, "business": 8500},
    "JPY": {"team": 4000, "business": 13000},
    "KWD": {"team": 9000, "business": 27000},
}
# tier-1 USD price per single unit (bytes priced per byte: 0.25 USD/GB = 0.00000000025)
USD_UNIT_PRICE = {
    "error": Decimal("0.000290"),
    "transaction": Decimal("0.000030"),
    "attachment": Decimal("0.00000000025"),
    "replay": Decimal("0.0030"),
    "span": Decimal("0.0000015"),
    "log_byte": Decimal("0.0000000005"),
    "profile": Decimal("0.00020"),
    "monitor_seat": Decimal("0.0010"),
}
TIER_PRICE_FACTOR = (Decimal("1"), Decimal("0.8"), Decimal("0.6"))
PLAN_PRICE_FACTOR = {"team": Decimal("1"), "business": Decimal("0.85")}
# graduated tier starts, in billable units beyond the allowance
TIER_STARTS = {
    "error": (0, 1_000_000, 10_000_000),
    "transaction": (0, 10_000_000, 100_000_000),
    "attachment": (0, 50 * 10**9, 500 * 10**9),
    "replay": (0, 10_000, 100_000),
    "span": (0, 100_000_000, 1_000_000_000),
    "log_byte": (0, 500 * 10**9, 5000 * 10**9),
    "profile": (0, 100_000, 1_000_000),
    "monitor_seat": (0, 10_000, 100_000),
}
INCLUDED = {
    "error": {"team": 50_000, "business": 500_000},
    "transaction": {"team": 100_000, "business": 1_000_000},
    "attachment": {"team": 10**9, "business": 10 * 10**9},
    "replay": {"team": 500, "business": 5_000},
    "span": {"team": 10_000_000, "business": 100_000_000},
    "log_byte": {"team": 5 * 10**9, "business": 50 * 10**9},
    "profile": {"team": 10_000, "business": 100_000},
    "monitor_seat": {"team": 1_000, "business": 5_000},
}
# accepted quantity per project-hour before the account size multiplier
BASE_HOURLY = {
    "error": 300.0,
    "transaction": 3_000.0,
    "attachment": 2_000_000.0,
    "replay": 10.0,
    "span": 30_000.0,
    "log_byte": 30_000_000.0,
    "profile": 80.0,
    "monitor_seat": 3.0,
}
LATE_SHARE = 0.01
# prepaid credit grants (USD, converted at CURRENCY_RATE) and monthly minimum commitments
CREDIT_SHARE = 0.2
CREDIT_USD = (Decimal(100), Decimal(250), Decimal(500), Decimal(1000))
COMMITMENT_USD = (Decimal(500), Decimal(1000), Decimal(2500))
PRICE_EFFECTIVE_FROM = dt.date(2026, 1, 1)
UNKNOWN_ACCOUNT = "acct_9999"
NEGATIVE_PROJECT = "proj_neg"
STRIPE_RESOURCES = (
    "customers",
    "subscriptions",
    "invoices",
    "charges",
    "refunds",
    "disputes",
    "credit_notes",
    "balance_transactions",
    "payouts",
    "events",
)

_EPOCH = dt.datetime(1970, 1, 1)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ADJECTIVES = (
    "Amber", "Blue", "Cedar", "Delta", "Ember", "Frost", "Granite", "Harbor", "Iris", "Jade",
    "Kite", "Lumen", "Maple", "Nimbus", "Onyx", "Pine", "Quartz", "River", "Slate", "Tidal",
)  # fmt: skip
_NOUNS = (
    "Analytics", "Labs", "Systems", "Works", "Cloud", "Logistics", "Health", "Media", "Games",
    "Robotics", "Finance", "Foods", "Energy", "Travel", "Studio", "Networks",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# small helpers


def _epoch(value: dt.datetime | dt.date) -> int:
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return int((value - _EPOCH).total_seconds())


def _from_epoch(seconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=int(seconds))


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _stream(seed: int, name: str) -> random.Random:
    """An independent, reproducible random stream (str seeds hash with sha512, not PYTHONHASHSEED)."""
    return random.Random(f"meterline:{seed}:{name}")


def _np_stream(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"meterline:{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def stripe_id(prefix: str, seed: int, *parts: object) -> str:
    """A Stripe-looking id (`in_1...`), deterministic in the seed and the object's identity."""
    digest = hashlib.sha256("|".join([prefix, str(seed), *map(str, parts)]).encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(23):
        number, rem = divmod(number, 62)
        chars.append(_B62[rem])
    return f"{prefix}_1{''.join(chars)}"


def round_half_even(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def stripe_fee(amount: int) -> int:
    """Stripe-like card fee 2.9% + 30 minor units, integer arithmetic, half-even."""
    quotient, remainder = divmod(amount * 29, 1000)
    if remainder * 2 > 1000 or (remainder * 2 == 1000 and quotient % 2 == 1):
        quotient += 1
    return quotient + 30


def _price(usd: Decimal, currency: str, factor: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 50
        raw = usd * CURRENCY_RATE[currency] * factor
        exponent = raw.adjusted() - 3  # 4 significant digits
        quantum = Decimal(1).scaleb(max(exponent, -12))
        value = raw.quantize(quantum, rounding=ROUND_HALF_EVEN)
        if value == 0:
            value = Decimal("0.000000000001")
        return value.quantize(Decimal("0.000000000001"))


# ---------------------------------------------------------------------------------------------
# the billing system's catalogue and rating


@dataclass(frozen=True)
class Tier:
    start: int
    end: int | None
    unit_price: Decimal


@dataclass(frozen=True)
class PriceBook:
    plan_id: str
    category: str
    included: int
    tiers: tuple[Tier, ...]


@dataclass(frozen=True)
class Plan:
    plan_id: str
    name: str
    currency: str
    base_fee_minor: int


@dataclass(frozen=True)
class Account:
    index: int
    account_id: str
    name: str
    email: str
    currency: str
    created_at: dt.datetime
    stripe_customer_id: str
    size: float
    projects: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    account_id: str
    plan_id: str
    started_at: dt.datetime
    ended_at: dt.datetime | None


def rate_amount(quantity: int, book: PriceBook) -> Decimal:
    """Exact graduated-tier amount over the quantity beyond the allowance (same rule as dbt)."""
    billable = max(0, quantity - book.included)
    with localcontext() as ctx:
        ctx.prec = 100
        total = Decimal(0)
        for tier in book.tiers:
            upper = billable if tier.end is None else min(billable, tier.end)
            units = max(0, upper - tier.start)
            total += Decimal(units) * tier.unit_price
        return total


def to_minor(amount: Decimal, currency: str) -> int:
    with localcontext() as ctx:
        ctx.prec = 100
        return round_half_even(amount.scaleb(CURRENCY_EXPONENT[currency]))


def _plans() -> list[Plan]:
    plans = []
    for currency, _ in CURRENCIES:
        for tier in ("team", "business"):
            plans.append(
                Plan(
                    plan_id=f"{tier}_{currency.lower()}",
                    name=f"{tier.title()} ({currency})",
                    currency=currency,
                    base_fee_minor=BASE_FEE_MINOR[currency][tier],
                )
            )
    return sorted(plans, key=lambda p: p.plan_id)


def _price_books(plans: list[Plan], seed: int) -> dict[tuple[str, str], PriceBook]:
    rng = _stream(seed, "price_books")
    books: dict[tuple[str, str], PriceBook] = {}
    for plan in plans:
        level = plan.plan_id.split("_")[0]
        for category in CATEGORIES:
            n_tiers = rng.randint(1, 3)
            starts = TIER_STARTS[category][:n_tiers]
            tiers = []
            for i, start in enumerate(starts):
                end = starts[i + 1] if i + 1 < n_tiers else None
                unit = _price(
                    USD_UNIT_PRICE[category],
                    plan.currency,
                    PLAN_PRICE_FACTOR[level] * TIER_PRICE_FACTOR[i],
                )
                tiers.append(Tier(start, end, unit))
            books[(plan.plan_id, category)] = PriceBook(
                plan.plan_id, category, INCLUDED[category][level], tuple(tiers)
            )
    return books


# ---------------------------------------------------------------------------------------------
# world layout


@dataclass
class World:
    seed: int
    start: dt.date
    days: int
    start_ts: int
    end_ts: int
    accounts: list[Account]
    plans: list[Plan]
    books: dict[tuple[str, str], PriceBook]
    subscriptions: list[Subscription]
    plan_changed: set[str]
    closed_months: list[dt.date]

    @property
    def last_day(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    def plan_at(self, account_id: str, moment: dt.datetime) -> str | None:
        for sub in self.subscriptions:
            if sub.account_id != account_id:
                continue
            if sub.started_at <= moment and (sub.ended_at is None or moment < sub.ended_at):
                return sub.plan_id
        return None


def _accounts(seed: int, n: int, start: dt.date) -> list[Account]:
    rng = _stream(seed, "accounts")
    codes = [c for c, _ in CURRENCIES]
    weights = [w for _, w in CURRENCIES]
    currencies = [rng.choices(codes, weights)[0] for _ in range(n)]
    if n >= 4:
        for code in codes:
            if code in currencies:
                continue
            counts = {c: currencies.count(c) for c in codes}
            victim = max(i for i in range(n) if counts[currencies[i]] >= 2)
            currencies[victim] = code
    accounts = []
    used_names: set[str] = set()
    for i in range(n):
        account_id = f"acct_{i + 1:04d}"
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        if name in used_names:
            name = f"{name} {i + 1}"
        used_names.add(name)
        slug = name.lower().replace(" ", "-")
        created = dt.datetime(start.year, start.month, start.day) - dt.timedelta(
            seconds=rng.randint(70 * 86400, 700 * 86400)
        )
        size = min(300.0, rng.paretovariate(1.3))
        n_projects = rng.randint(1, 4)
        projects = tuple(f"proj_{i + 1:04d}_{k + 1}" for k in range(n_projects))
        categories = tuple(c for c in CATEGORIES if c == "error" or rng.random() < 0.5)
        accounts.append(
            Account(
                index=i,
                account_id=account_id,
                name=name,
                email=f"billing@{slug}.example",
                currency=currencies[i],
                created_at=created,
                stripe_customer_id=stripe_id("cus", seed, account_id),
                size=size,
                projects=projects,
                categories=categories,
            )
        )
    return accounts


def _subscriptions(
    seed: int, accounts: list[Account], start: dt.date, end: dt.date
) -> tuple[list[Subscription], set[str]]:
    rng = _stream(seed, "subscriptions")
    boundaries = []
    month = _next_month(start)
    while month < end:
        boundaries.append(month)
        month = _next_month(month)
    if not boundaries and start.day == 1:
        boundaries.append(start)
    n_changes = max(1, round(len(accounts) * 0.05)) if len(accounts) >= 10 and boundaries else 0
    changed = set(rng.sample([a.account_id for a in accounts], n_changes)) if n_changes else set()
    subs: list[tuple[str, str, dt.datetime, dt.datetime | None]] = []
    for account in accounts:
        level = "team" if rng.random() < 0.6 else "business"
        begun = _next_month(account.created_at.date())
        started = dt.datetime(begun.year, begun.month, 1)
        plan = f"{level}_{account.currency.lower()}"
        if account.account_id in changed:
            b = rng.choice(boundaries)
            boundary = dt.datetime(b.year, b.month, 1)
            other = "business" if level == "team" else "team"
            subs.append((account.account_id, plan, started, boundary))
            subs.append((account.account_id, f"{other}_{account.currency.lower()}", boundary, None))
        else:
            subs.append((account.account_id, plan, started, None))
    subs.sort(key=lambda s: (s[0], s[2]))
    return (
        [Subscription(f"sub_{i + 1:05d}", a, p, s, e) for i, (a, p, s, e) in enumerate(subs)],
        changed,
    )


def _closed_months(start: dt.date, days: int) -> list[dt.date]:
    end = start + dt.timedelta(days=days)
    months = []
    month = start if start.day == 1 else _next_month(start)
    while _next_month(month) + dt.timedelta(days=3) <= end:
        months.append(month)
        month = _next_month(month)
    return months


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, day.day)


# ---------------------------------------------------------------------------------------------
# credits and commitments: the billing system trues each invoice up to its minimum commitment
# and draws prepaid credits down on it (`_apply_contracts`, the same rules as dbt, written
# independently: docs/pricing.md)


@dataclass(frozen=True)
class Credit:
    credit_id: str
    account_id: str
    currency: str
    amount_minor: int
    granted_at: dt.datetime
    expires_at: dt.datetime | None
    reason: str


@dataclass(frozen=True)
class Commitment:
    commitment_id: str
    account_id: str
    currency: str
    minimum_minor: int
    starts_on: dt.date
    ends_on: dt.date | None


def _usd_to_minor(usd: Decimal, currency: str) -> int:
    with localcontext() as ctx:
        ctx.prec = 50
        return to_minor(usd * CURRENCY_RATE[currency], currency)


def _credits(world: World) -> list[Credit]:
    """Credit grants for about a fifth of the accounts (at least one), all granted before the
    world: prepaid purchases expiring a year after the grant, goodwill credits that never
    expire, and one promotional grant that expires inside the world (at its first month
    boundary, else half-way through)."""
    rng = _stream(world.seed, "credits")
    accounts = world.accounts
    n = max(1, round(len(accounts) * CREDIT_SHARE))
    chosen = sorted(rng.sample(range(len(accounts)), n))
    expiring = rng.choice(chosen)
    start = dt.datetime.combine(world.start, dt.time())
    boundary = dt.datetime.combine(_next_month(world.start), dt.time())
    inside = boundary if boundary < start + dt.timedelta(days=world.days) else (
        start + dt.timedelta(days=world.days // 2))
    rows = []
    for index in chosen:
        account = accounts[index]
        earliest = max(account.created_at, start - dt.timedelta(days=180))
        span = int((start - earliest).total_seconds())
        granted = earliest + dt.timedelta(seconds=rng.randint(1, span - 1))
        amount = _usd_to_minor(rng.choice(CREDIT_USD), account.currency)
        expires: dt.datetime | None
        if index == expiring:
            reason, expires = "promotional", inside
        elif rng.random() < 0.75:
            reason, expires = "prepaid", granted + dt.timedelta(days=365)
        else:
            reason, expires = "goodwill", None
        rows.append((account.account_id, granted, account.currency, amount, expires, reason))
    rows.sort()
    return [
        Credit(f"cred_{i + 1:04d}", a, c, amt, g, e, r)
        for i, (a, g, c, amt, e, r) in enumerate(rows)
    ]


def _commitments(world: World) -> list[Commitment]:
    """A monthly minimum commitment for the largest account (the two largest from 10 accounts
    on): an annual contract starting on the 1st of a month before the world, never before the
    account's first subscription."""
    rng = _stream(world.seed, "commitments")
    n = 2 if len(world.accounts) >= 10 else 1
    largest = sorted(world.accounts, key=lambda a: (-a.size, a.account_id))[:n]
    month = world.start.replace(day=1)
    rows = []
    for account in sorted(largest, key=lambda a: a.account_id):
        first_sub = min(
            s.started_at for s in world.subscriptions if s.account_id == account.account_id
        )
        starts = max(first_sub.date(), _add_months(month, -rng.randint(1, 6)))
        minimum = _usd_to_minor(rng.choice(COMMITMENT_USD), account.currency)
        rows.append((account.account_id, account.currency, minimum, starts, _add_months(starts, 12)))
    return [Commitment(f"cmt_{i + 1:04d}", *row) for i, row in enumerate(rows)]


# ---------------------------------------------------------------------------------------------
# metering


@dataclass
class Metering:
    hours: np.ndarray  # (H,) epoch seconds of hour starts
    s_account: np.ndarray  # (S,) account index
    s_project: list[str]
    s_category: list[str]
    qty: np.ndarray  # (S, H) on-time accepted quantity
    upd: np.ndarray  # (S, H) on-time updated_at
    late_mask: np.ndarray  # (S, H)
    late_qty: np.ndarray  # (S, H) quantity of the late version (where late_mask)
    late_upd: np.ndarray  # (S, H)
    others: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]  # outcome, mask, qty, upd


def _metering(world: World) -> Metering:
    rng_py = _stream(world.seed, "series")
    rng = _np_stream(world.seed, "metering")
    s_account: list[int] = []
    s_project: list[str] = []
    s_category: list[str] = []
    rate: list[float] = []
    amp: list[float] = []
    phase: list[float] = []
    sigma: list[float] = []
    for account in world.accounts:
        weights = [rng_py.uniform(0.3, 1.0) for _ in account.projects]
        mean_w = sum(weights) / len(weights)
        for k, project in enumerate(account.projects):
            for category in account.categories:
                if k > 0 and rng_py.random() >= 0.7:
                    continue
                s_account.append(account.index)
                s_project.append(project)
                s_category.append(category)
                rate.append(
                    BASE_HOURLY[category] * account.size * weights[k] / mean_w
                    * rng_py.uniform(0.6, 1.4)
                )  # fmt: skip
                seat = category == "monitor_seat"
                amp.append(0.0 if seat else rng_py.uniform(0.2, 0.7))
                phase.append(rng_py.uniform(0.0, 24.0))
                sigma.append(0.03 if seat else 0.25)
    n_series = len(s_account)
    n_hours = world.days * 24
    hours = world.start_ts + 3600 * np.arange(n_hours, dtype=np.int64)
    hour_of_day = np.arange(n_hours) % 24
    account_arr = np.array(s_account, dtype=np.int64)

    spike = np.ones((n_series, n_hours))
    n_spikes = max(1, len(world.accounts) * world.days // 80)
    for _ in range(n_spikes):
        account = world.accounts[rng_py.randrange(len(world.accounts))]
        category = rng_py.choice(account.categories)
        day = rng_py.randrange(world.days)
        factor = rng_py.randint(5, 20)
        for s in range(n_series):
            if s_account[s] == account.index and s_category[s] == category:
                spike[s, day * 24 : (day + 1) * 24] *= factor

    cycle = 1.0 + np.array(amp)[:, None] * np.sin(
        2 * math.pi * (hour_of_day[None, :] - np.array(phase)[:, None]) / 24.0
    )
    noise = np.exp(rng.standard_normal((n_series, n_hours)) * np.array(sigma)[:, None])
    qty = np.maximum(1, np.floor(np.array(rate)[:, None] * cycle * noise * spike)).astype(np.int64)
    upd = hours[None, :] + rng.integers(300, 3301, size=(n_series, n_hours))

    # late versions: strictly after the hour's day (so the day's 23:59 counter never saw them),
    # within 2 days of the hour, never in a later calendar month than the hour
    day_index = np.arange(n_hours) // 24
    month_end = np.array(
        [_epoch(_next_month(world.day(d))) for d in range(world.days)], dtype=np.int64
    )[day_index]
    lower = world.start_ts + (day_index + 1) * 86400
    upper = np.minimum(hours + 2 * 86400, month_end)
    eligible = upper > lower
    late_mask = eligible[None, :] & (rng.random((n_series, n_hours)) < LATE_SHARE)
    span = np.maximum(upper - lower, 1)
    late_upd = lower[None, :] + np.floor(rng.random((n_series, n_hours)) * span[None, :]).astype(
        np.int64
    )
    late_extra = np.maximum(1, np.floor(qty * rng.uniform(0.02, 0.3, (n_series, n_hours))))
    late_qty = qty + late_extra.astype(np.int64)

    others = []
    for outcome, share in OTHER_OUTCOMES:
        mask = rng.random((n_series, n_hours)) < share
        oqty = np.maximum(1, np.floor(qty * rng.uniform(0.01, 0.3, (n_series, n_hours))))
        oupd = hours[None, :] + rng.integers(300, 3301, size=(n_series, n_hours))
        others.append((outcome, mask, oqty.astype(np.int64), oupd))
    return Metering(
        hours=hours,
        s_account=account_arr,
        s_project=s_project,
        s_category=s_category,
        qty=qty,
        upd=upd,
        late_mask=late_mask,
        late_qty=late_qty,
        late_upd=late_upd,
        others=others,
    )


def _metering_frame(world: World, m: Metering, extra_rows: list[dict[str, Any]]) -> pd.DataFrame:
    n_series, n_hours = m.qty.shape
    acct_ids = np.array([a.account_id for a in world.accounts], dtype=object)
    s_acct = acct_ids[m.s_account]
    s_proj = np.array(m.s_project, dtype=object)
    s_cat = np.array(m.s_category, dtype=object)
    parts = []

    def block(mask: np.ndarray | None, outcome: str, qty: np.ndarray, upd: np.ndarray) -> None:
        if mask is None:
            s_idx, h_idx = np.divmod(np.arange(n_series * n_hours), n_hours)
            q, u = qty.ravel(), upd.ravel()
        else:
            s_idx, h_idx = np.nonzero(mask)
            q, u = qty[s_idx, h_idx], upd[s_idx, h_idx]
        parts.append(
            pd.DataFrame(
                {
                    "hour_start": m.hours[h_idx],
                    "account_id": s_acct[s_idx],
                    "project_id": s_proj[s_idx],
                    "category": s_cat[s_idx],
                    "outcome": outcome,
                    "quantity": q.astype(np.int64),
                    "updated_at": u.astype(np.int64),
                }
            )
        )

    block(None, "accepted", m.qty, m.upd)
    block(m.late_mask, "accepted", m.late_qty, m.late_upd)
    for outcome, mask, oqty, oupd in m.others:
        block(mask, outcome, oqty, oupd)
    if extra_rows:
        parts.append(pd.DataFrame(extra_rows))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.sort_values(
        ["hour_start", "account_id", "project_id", "category", "outcome", "updated_at", "quantity"],
        kind="stable",
    )
    return frame.reset_index(drop=True)


def _counters(world: World, m: Metering) -> pd.DataFrame:
    """The billing system's daily counters: on-time at 23:59:00, restated at each late version."""
    n_series, n_hours = m.qty.shape
    s_idx, h_idx = np.divmod(np.arange(n_series * n_hours), n_hours)
    base = pd.DataFrame(
        {
            "day": h_idx // 24,
            "account": m.s_account[s_idx],
            "category": np.array(m.s_category, dtype=object)[s_idx],
            "quantity": m.qty.ravel(),
        }
    )
    keys = ["day", "account", "category"]
    base = base.groupby(keys, sort=True, as_index=False)["quantity"].sum()
    base["updated_at"] = world.start_ts + base["day"] * 86400 + 86340
    ls, lh = np.nonzero(m.late_mask)
    late = pd.DataFrame(
        {
            "day": lh // 24,
            "account": m.s_account[ls],
            "category": np.array(m.s_category, dtype=object)[ls],
            "updated_at": m.late_upd[ls, lh],
            "delta": m.late_qty[ls, lh] - m.qty[ls, lh],
        }
    )
    late = late.groupby([*keys, "updated_at"], sort=True, as_index=False)["delta"].sum()
    late["delta"] = late.groupby(keys, sort=False)["delta"].cumsum()
    late = late.merge(base[[*keys, "quantity"]], on=keys, how="left")
    late["quantity"] = late["quantity"] + late["delta"]
    out = pd.concat([base, late[[*keys, "quantity", "updated_at"]]], ignore_index=True)
    return out


def _period_usage(world: World, m: Metering, month: dt.date) -> dict[tuple[int, str], int]:
    """Accepted quantity per (account index, category) in the month, versions before period end."""
    ps, pe = _epoch(month), _epoch(_next_month(month))
    cols = (m.hours >= ps) & (m.hours < pe)
    qty = m.qty[:, cols]
    late_in = m.late_mask[:, cols] & (m.late_upd[:, cols] < pe)
    final = np.where(late_in, m.late_qty[:, cols], qty).sum(axis=1)
    usage: dict[tuple[int, str], int] = {}
    for s, total in enumerate(final.tolist()):
        key = (int(m.s_account[s]), m.s_category[s])
        usage[key] = usage.get(key, 0) + int(total)
    return usage


# ---------------------------------------------------------------------------------------------
# invoices (billing system) and the planted faults


def _rate_invoice(
    world: World, account: Account, month: dt.date, usage: dict[tuple[int, str], int]
) -> dict[str, Any] | None:
    ps = dt.datetime(month.year, month.month, 1)
    plan_id = world.plan_at(account.account_id, ps)
    if plan_id is None:
        return None
    plan = next(p for p in world.plans if p.plan_id == plan_id)
    lines = [
        {
            "category": "base_fee",
            "quantity": 1,
            "amount_decimal": format(
                Decimal(plan.base_fee_minor).scaleb(-CURRENCY_EXPONENT[plan.currency]), "f"
            ),
            "amount_minor": plan.base_fee_minor,
        }
    ]
    for category in CATEGORIES:
        quantity = usage.get((account.index, category))
        if not quantity:
            continue
        amount = rate_amount(quantity, world.books[(plan_id, category)])
        lines.append(
            {
                "category": category,
                "quantity": quantity,
                "amount_decimal": format(amount, "f"),
                "amount_minor": to_minor(amount, account.currency),
            }
        )
    return {
        "account_id": account.account_id,
        "period": month.strftime("%Y-%m"),
        "period_start": ps.isoformat(sep=" "),
        "period_end": dt.datetime.combine(_next_month(month), dt.time()).isoformat(sep=" "),
        "currency": account.currency,
        "plan_id": plan_id,
        "lines": lines,
        "total_minor": sum(line["amount_minor"] for line in lines),
    }


def _ratio_half_even(num: int, den: int) -> int:
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def _apply_contracts(world: World, invoices: list[dict[str, Any]]) -> None:
    """Add commitment true-up and credit lines to the invoices (sorted by account, period).

    Commitment: the minimum (prorated by the days it covers the period, half-even) minus the
    period's charges, when positive. Credits: valid for a period when granted before its end
    and not expired by its start; each invoice draws up to its total from the credits expiring
    first (never-expiring last), then the oldest grant, then the id."""
    commitments = _commitments(world)
    balances = {c.credit_id: c.amount_minor for c in _credits(world)}
    credits = sorted(_credits(world), key=lambda c: (
        c.expires_at or dt.datetime.max, c.granted_at, c.credit_id))
    exp = CURRENCY_EXPONENT
    for invoice in invoices:
        month = dt.date.fromisoformat(invoice["period"] + "-01")
        nxt = _next_month(month)
        days = (nxt - month).days
        account_id, currency = invoice["account_id"], invoice["currency"]
        minimum = 0
        for c in commitments:
            if c.account_id != account_id or c.currency != currency:
                continue
            lo = max(c.starts_on, month)
            hi = nxt if c.ends_on is None else min(c.ends_on, nxt)
            if hi > lo:
                minimum += _ratio_half_even(c.minimum_minor * (hi - lo).days, days)
        net = sum(line["amount_minor"] for line in invoice["lines"])
        if minimum > net:
            invoice["lines"].append(_fixed_line("commitment", minimum - net, currency, exp))
        demand = max(0, sum(line["amount_minor"] for line in invoice["lines"]))
        start = dt.datetime.combine(month, dt.time())
        end = dt.datetime.combine(nxt, dt.time())
        for c in credits:
            if c.account_id != account_id or c.currency != currency or demand == 0:
                continue
            if not (c.granted_at < end and (c.expires_at is None or c.expires_at > start)):
                continue
            draw = min(balances[c.credit_id], demand)
            if draw > 0:
                balances[c.credit_id] -= draw
                demand -= draw
                line = _fixed_line("credit", -draw, currency, exp)
                line["key"] = f"credit:{c.credit_id}"
                invoice["lines"].append(line)
        invoice["total_minor"] = sum(line["amount_minor"] for line in invoice["lines"])


def _fixed_line(category: str, amount_minor: int, currency: str, exp: dict[str, int]) -> dict[str, Any]:
    return {
        "category": category,
        "quantity": 1,
        "amount_decimal": format(Decimal(amount_minor).scaleb(-exp[currency]), "f"),
        "amount_minor": amount_minor,
    }


@dataclass
class Plants:
    """The faults to plant; chosen the same way whether or not they are applied."""

    counter_drop: tuple[int, str, int] | None = None  # (account index, category, day index)
    counter_dup: tuple[int, str, int] | None = None
    counter_wrong: tuple[int, str, int] | None = None
    meter_dup: tuple[int, int] | None = None  # (series, hour)
    meter_unknown: dict[str, Any] | None = None
    meter_negative: dict[str, Any] | None = None
    invoice_missing: str | None = None  # account id
    line_wrong: tuple[str, str] | None = None  # (account id, category)
    late_after_close: tuple[int, int] | None = None  # (series, hour)
    late_after_close_upd: int = 0
    refund_orphan: bool = False


def _choose_plants(
    world: World,
    m: Metering,
    invoices_m: dict[str, dict[str, Any]],
    first_month: dt.date | None,
    reconcile_rel: Decimal,
) -> Plants:
    rng = _stream(world.seed, "plants")
    plants = Plants()
    candidates = [a for a in world.accounts if a.account_id not in world.plan_changed]
    rng.shuffle(candidates)
    used: set[str] = set()

    if first_month is not None:
        # stripe_invoice_missing: any candidate with an invoice
        for account in candidates:
            if account.account_id in invoices_m:
                plants.invoice_missing = account.account_id
                used.add(account.account_id)
                break
        # stripe_line_wrong_quantity: a line whose +13% re-rating moves the total well past tolerance
        best: tuple[Decimal, str, str] | None = None
        for account in candidates:
            if account.account_id in used or account.account_id not in invoices_m:
                continue
            invoice = invoices_m[account.account_id]
            if invoice["total_minor"] <= 0:
                continue
            for line in invoice["lines"][1:]:
                if line["category"] not in CATEGORIES:
                    continue
                new_amount = _rerated(world, invoice, line["category"], _plus_13(line["quantity"]))
                delta = Decimal(new_amount - line["amount_minor"]) / Decimal(invoice["total_minor"])
                if best is None or delta > best[0]:
                    best = (delta, account.account_id, line["category"])
            if best is not None and best[0] >= 4 * reconcile_rel:
                break
        if best is not None and best[0] > 0:
            plants.line_wrong = (best[1], best[2])
            used.add(best[1])
        # late_event_after_close: a count category whose +1000 clearly moves quantity and amount
        last_day = _next_month(first_month) - dt.timedelta(days=1)
        day_idx = (last_day - world.start).days
        chosen: tuple[Decimal, int] | None = None
        for account in candidates:
            if account.account_id in used or account.account_id not in invoices_m:
                continue
            invoice = invoices_m[account.account_id]
            if invoice["total_minor"] <= 0:  # covered by credits: no relative move to score
                continue
            for line in invoice["lines"][1:]:
                if line["category"] not in CATEGORIES or line["category"] in BYTE_CATEGORIES:
                    continue
                new_amount = _rerated(world, invoice, line["category"], line["quantity"] + 1000)
                if new_amount == line["amount_minor"]:
                    continue
                score = min(
                    Decimal(1000) / Decimal(line["quantity"]),
                    Decimal(new_amount - line["amount_minor"]) / Decimal(invoice["total_minor"]),
                )
                series = [
                    s
                    for s in range(len(m.s_category))
                    if m.s_account[s] == account.index and m.s_category[s] == line["category"]
                ]
                if series and (chosen is None or score > chosen[0]):
                    s = series[rng.randrange(len(series))]
                    chosen = (score, s)
            if chosen is not None and chosen[0] >= 4 * reconcile_rel:
                break
        if chosen is not None:
            s = chosen[1]
            plants.late_after_close = (s, day_idx * 24 + rng.randrange(24))
            second = _next_month(first_month) + dt.timedelta(days=1)
            plants.late_after_close_upd = _epoch(second) + 10 * 3600
            used.add(world.accounts[int(m.s_account[s])].account_id)
        plants.refund_orphan = True

    lo, hi = 2, world.days - 6  # day indices in [start+2, last_day-5]
    if lo > hi:
        return plants
    late_keys = set()
    ls, lh = np.nonzero(m.late_mask)
    for s, h in zip(ls.tolist(), lh.tolist(), strict=True):
        late_keys.add((int(m.s_account[s]), m.s_category[s], h // 24))
    taken: set[tuple[int, str, int]] = set()
    pool = [a for a in candidates if a.account_id not in used]
    pool += [a for a in candidates if a.account_id in used]

    def pick() -> tuple[int, str, int] | None:
        """A fresh (account, category, day) without late versions; unused accounts first."""
        for account in list(pool):
            for _ in range(50):
                key = (account.index, rng.choice(account.categories), rng.randint(lo, hi))
                if key in late_keys or key in taken:
                    continue
                taken.add(key)
                pool.remove(account)
                pool.append(account)
                return key
        return None

    plants.counter_drop = pick()
    plants.counter_dup = pick()
    plants.counter_wrong = pick()
    dup_key = pick()
    if dup_key is not None:
        series = [
            s
            for s in range(len(m.s_category))
            if m.s_account[s] == dup_key[0] and m.s_category[s] == dup_key[1]
        ]
        plants.meter_dup = (series[rng.randrange(len(series))], dup_key[2] * 24 + rng.randrange(24))
    neg_key = pick()
    if neg_key is not None:
        hour = world.start_ts + (neg_key[2] * 24 + rng.randrange(24)) * 3600
        plants.meter_negative = {
            "hour_start": hour,
            "account_id": world.accounts[neg_key[0]].account_id,
            "project_id": NEGATIVE_PROJECT,
            "category": neg_key[1],
            "outcome": "accepted",
            "quantity": -500,
            "updated_at": hour + rng.randint(300, 3300),
        }
    day = rng.randint(lo, hi)
    hour = world.start_ts + (day * 24 + rng.randrange(24)) * 3600
    plants.meter_unknown = {
        "hour_start": hour,
        "account_id": UNKNOWN_ACCOUNT,
        "project_id": "proj_9999_1",
        "category": "error",
        "outcome": "accepted",
        "quantity": rng.randint(100, 5000),
        "updated_at": hour + rng.randint(300, 3300),
    }
    return plants


def _plus_13(quantity: int) -> int:
    return quantity + max(1, (quantity * 13 + 50) // 100)


def _rerated(world: World, invoice: dict[str, Any], category: str, quantity: int) -> int:
    book = world.books[(invoice["plan_id"], category)]
    return to_minor(rate_amount(quantity, book), invoice["currency"])


# ---------------------------------------------------------------------------------------------
# Stripe objects


def _stripe_objects(
    world: World,
    invoices: list[dict[str, Any]],
    plants: Plants,
    plant: bool,
    planted_accounts: set[str],
) -> tuple[dict[str, list[dict[str, Any]]], tuple[str, str] | None]:
    """Stripe's copy of the billing system's invoices, payments, refunds and payouts.

    Returns the objects per resource and, when planted, (orphan refund id, its missing charge id).
    """
    seed = world.seed
    accounts = {a.account_id: a for a in world.accounts}
    customers = []
    for account in world.accounts:
        created = _epoch(account.created_at) + 60 + account.index
        customers.append(
            {
                "id": account.stripe_customer_id,
                "object": "customer",
                "address": None,
                "balance": 0,
                "created": created,
                "currency": account.currency.lower(),
                "default_source": None,
                "delinquent": False,
                "description": account.name,
                "email": account.email,
                "invoice_prefix": stripe_id("x", seed, account.account_id)[3:11].upper(),
                "invoice_settings": {"default_payment_method": None, "footer": None},
                "livemode": False,
                "metadata": {"account_id": account.account_id},
                "name": account.name,
                "phone": None,
                "preferred_locales": [],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
            }
        )

    stripe_invoices: list[dict[str, Any]] = []
    charges: list[dict[str, Any]] = []
    bts: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    invoice_count: dict[str, int] = {}
    closed = sorted({inv["period"] for inv in invoices})
    first_period = closed[0] if closed else None
    for expected in invoices:
        account = accounts[expected["account_id"]]
        period = expected["period"]
        is_first_month = plant and period == first_period
        if is_first_month and account.account_id == plants.invoice_missing:
            continue
        rng = _stream(seed, f"invoice:{account.account_id}:{period}")
        month = dt.date.fromisoformat(period + "-01")
        ps, pe = _epoch(month), _epoch(_next_month(month))
        created = pe + rng.randint(3600, 5 * 3600 - 1)
        invoice_id = stripe_id("in", seed, account.account_id, period)
        lines = [dict(line) for line in expected["lines"]]
        if is_first_month and plants.line_wrong and plants.line_wrong[0] == account.account_id:
            for line in lines:
                if line["category"] == plants.line_wrong[1]:
                    line["quantity"] = _plus_13(line["quantity"])
                    line["amount_minor"] = _rerated(
                        world, expected, line["category"], line["quantity"]
                    )
        total = sum(line["amount_minor"] for line in lines)
        currency = account.currency.lower()
        line_objects = []
        for line in lines:
            category = line["category"]
            description = (
                f"{accounts[account.account_id].name} base fee"
                if category == "base_fee"
                else f"{line['quantity']} × {category} ({period})"
            )
            line_objects.append(
                {
                    "id": stripe_id("il", seed, account.account_id, period, line.get("key", category)),
                    "object": "line_item",
                    "amount": line["amount_minor"],
                    "currency": currency,
                    "description": description,
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {"account_id": account.account_id, "category": category},
                    "period": {"end": pe, "start": ps},
                    "quantity": line["quantity"],
                    "taxes": [],
                }
            )
        paid = rng.random() < 0.9
        charge_created = created + rng.randint(3600, 30 * 3600)
        invoice_count[account.account_id] = invoice_count.get(account.account_id, 0) + 1
        customer = next(c for c in customers if c["id"] == account.stripe_customer_id)
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "amount_due": total,
            "amount_paid": total if paid else 0,
            "amount_remaining": 0 if paid else total,
            "attempt_count": 1 if paid else 0,
            "attempted": paid,
            "auto_advance": not paid,
            "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically",
            "created": created,
            "currency": currency,
            "customer": account.stripe_customer_id,
            "customer_email": account.email,
            "customer_name": account.name,
            "description": None,
            "due_date": None,
            "effective_at": created,
            "ending_balance": 0,
            "lines": {
                "object": "list",
                "data": line_objects,
                "has_more": False,
                "total_count": len(line_objects),
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": {"account_id": account.account_id, "period": period},
            "number": f"{customer['invoice_prefix']}-{invoice_count[account.account_id]:04d}",
            "period_end": pe,
            "period_start": ps,
            "starting_balance": 0,
            "status": "paid" if paid else "open",
            "status_transitions": {
                "finalized_at": created,
                "marked_uncollectible_at": None,
                "paid_at": charge_created if paid else None,
                "voided_at": None,
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_taxes": [],
        }
        stripe_invoices.append(invoice)
        if paid and total > 0:  # Stripe settles a zero invoice (credits cover it) without a charge
            charge_id = stripe_id("ch", seed, invoice_id)
            txn_id = stripe_id("txn", seed, charge_id)
            charges.append(
                {
                    "id": charge_id,
                    "object": "charge",
                    "amount": total,
                    "amount_captured": total,
                    "amount_refunded": 0,
                    "balance_transaction": txn_id,
                    "captured": True,
                    "created": charge_created,
                    "currency": currency,
                    "customer": account.stripe_customer_id,
                    "description": f"Invoice {invoice['number']}",
                    "disputed": False,
                    "failure_code": None,
                    "failure_message": None,
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {"account_id": account.account_id, "period": period},
                    "paid": True,
                    "payment_intent": None,
                    "receipt_email": account.email,
                    "refunded": False,
                    "status": "succeeded",
                }
            )
            bts.append(
                _balance_transaction(txn_id, "charge", charge_id, total, currency, charge_created)
            )

    # refunds of real charges (partial), never on accounts chosen for a planted fault
    rng = _stream(seed, "refunds")
    refundable = [
        c
        for c in sorted(charges, key=lambda c: c["id"])
        if c["metadata"]["account_id"] not in planted_accounts
    ]
    for charge in rng.sample(refundable, min(2, len(refundable))):
        amount = max(1, charge["amount"] * rng.randint(10, 50) // 100)
        created = charge["created"] + rng.randint(3600, 10 * 3600)
        refund_id = stripe_id("re", seed, charge["id"])
        txn_id = stripe_id("txn", seed, refund_id)
        charge["amount_refunded"] = amount
        charge["refunded"] = amount == charge["amount"]
        refunds.append(
            _refund(refund_id, charge["id"], amount, charge["currency"], created, txn_id)
        )
        bts.append(
            _balance_transaction(txn_id, "refund", refund_id, -amount, charge["currency"], created)
        )

    orphan: tuple[str, str] | None = None
    if plant and plants.refund_orphan and first_period is not None:
        month = dt.date.fromisoformat(first_period + "-01")
        created = (
            _epoch(_next_month(month) + dt.timedelta(days=1)) + 14 * 3600 + rng.randint(0, 3599)
        )
        refund_id = stripe_id("re", seed, "orphan", first_period)
        missing_charge = stripe_id("ch", seed, "deleted", first_period)
        txn_id = stripe_id("txn", seed, refund_id)
        currency = "usd"
        amount = 1500
        refunds.append(_refund(refund_id, missing_charge, amount, currency, created, txn_id))
        bts.append(_balance_transaction(txn_id, "refund", refund_id, -amount, currency, created))
        orphan = (refund_id, missing_charge)

    # one payout per currency on the 3rd of the month after each closed month
    payouts: list[dict[str, Any]] = []
    for period in closed:
        month = dt.date.fromisoformat(period + "-01")
        third = _next_month(month) + dt.timedelta(days=2)
        for code, _ in CURRENCIES:
            currency = code.lower()
            created = (
                _epoch(third) + 3600 + _stream(seed, f"payout:{period}:{code}").randint(0, 3599)
            )
            amount = sum(
                b["net"] for b in bts if b["currency"] == currency and b["created"] < created
            )
            if amount <= 0:
                continue
            payout_id = stripe_id("po", seed, period, currency)
            txn_id = stripe_id("txn", seed, payout_id)
            payouts.append(
                {
                    "id": payout_id,
                    "object": "payout",
                    "amount": amount,
                    "arrival_date": _epoch(third),
                    "automatic": True,
                    "balance_transaction": txn_id,
                    "created": created,
                    "currency": currency,
                    "description": "STRIPE PAYOUT",
                    "destination": stripe_id("ba", seed, currency),
                    "failure_balance_transaction": None,
                    "failure_code": None,
                    "failure_message": None,
                    "livemode": False,
                    "metadata": {},
                    "method": "standard",
                    "source_type": "card",
                    "statement_descriptor": None,
                    "status": "paid",
                    "type": "bank_account",
                }
            )
            bts.append(
                _balance_transaction(txn_id, "payout", payout_id, -amount, currency, created)
            )

    def ordered(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(items, key=lambda o: (o["created"], o["id"]))

    objects = {
        "customers": ordered(customers),
        "invoices": ordered(stripe_invoices),
        "charges": ordered(charges),
        "refunds": ordered(refunds),
        "balance_transactions": ordered(bts),
        "payouts": ordered(payouts),
    }
    _stripe_lifecycle(world, objects, planted_accounts)
    for resource in ("subscriptions", "disputes", "credit_notes", "events"):
        objects[resource] = ordered(objects[resource])
    return objects, orphan


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(obj))


def _stripe_event(seed: int, kind: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": stripe_id("evt", seed, kind, obj["id"], created),
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": _copy(obj)},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def _stripe_subscription(world: World, sub: Subscription, at: dt.datetime) -> dict[str, Any]:
    """The Stripe subscription mirroring a billing subscription, as it was at `at`."""
    account = next(a for a in world.accounts if a.account_id == sub.account_id)
    plan = next(p for p in world.plans if p.plan_id == sub.plan_id)
    canceled = sub.ended_at is not None and at >= sub.ended_at
    period_start = dt.datetime(at.year, at.month, 1) if not canceled else None
    if canceled:
        assert sub.ended_at is not None
        before = sub.ended_at - dt.timedelta(seconds=1)
        period_start = dt.datetime(before.year, before.month, 1)
    assert period_start is not None
    period_start = max(period_start, sub.started_at)
    period_end = dt.datetime.combine(_next_month(period_start.date()), dt.time())
    sub_id = stripe_id("sub", world.seed, sub.subscription_id)
    currency = plan.currency.lower()
    return {
        "id": sub_id,
        "object": "subscription",
        "billing_cycle_anchor": _epoch(sub.started_at),
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": _epoch(sub.ended_at) if canceled and sub.ended_at else None,
        "collection_method": "charge_automatically",
        "created": _epoch(sub.started_at),
        "currency": currency,
        "current_period_end": _epoch(sub.ended_at) if canceled and sub.ended_at else _epoch(period_end),
        "current_period_start": _epoch(period_start),
        "customer": account.stripe_customer_id,
        "ended_at": _epoch(sub.ended_at) if canceled and sub.ended_at else None,
        "items": {
            "object": "list",
            "data": [{
                "id": stripe_id("si", world.seed, sub.subscription_id),
                "object": "subscription_item",
                "created": _epoch(sub.started_at),
                "metadata": {},
                "price": {
                    "id": stripe_id("price", world.seed, plan.plan_id),
                    "object": "price",
                    "currency": currency,
                    "metadata": {"category": "base_fee", "plan_id": plan.plan_id},
                    "nickname": plan.name,
                    "recurring": {"interval": "month", "interval_count": 1},
                    "type": "recurring",
                    "unit_amount": plan.base_fee_minor,
                },
                "quantity": 1,
                "subscription": sub_id,
            }],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "livemode": False,
        "metadata": {"account_id": sub.account_id, "plan_id": sub.plan_id,
                     "subscription_id": sub.subscription_id},
        "start_date": _epoch(sub.started_at),
        "status": "canceled" if canceled else "active",
    }  # fmt: skip


def _stripe_lifecycle(
    world: World, objects: dict[str, list[dict[str, Any]]], planted_accounts: set[str]
) -> None:
    """Subscriptions, disputes, credit notes and the Events API log of the Stripe world.

    Every object's final state is what `objects` already holds; the latest event about an
    object (by created, then id) always carries exactly that final state, and no two events
    about one object share a second. Intermediate states (an invoice `open` before it was
    paid, a charge before its refund, an open dispute) appear only inside earlier events.
    Nothing here changes invoices, lines, charges, refunds, balance transactions or payouts.
    """
    seed = world.seed
    end = _from_epoch(world.end_ts)
    events: list[dict[str, Any]] = []

    def emit(kind: str, obj: dict[str, Any], created: int) -> None:
        if created < world.end_ts:
            events.append(_stripe_event(seed, kind, obj, created))

    for customer in objects["customers"]:
        emit("customer.created", customer, customer["created"])

    # subscriptions: created, renewed on every month boundary, canceled at a plan switch
    subscriptions = []
    for sub in world.subscriptions:
        if sub.started_at >= end:
            continue
        emit("customer.subscription.created", _stripe_subscription(world, sub, sub.started_at),
             _epoch(sub.started_at))
        boundary = _next_month(sub.started_at.date())
        while dt.datetime.combine(boundary, dt.time()) < end:
            moment = dt.datetime.combine(boundary, dt.time())
            if sub.ended_at is not None and moment >= sub.ended_at:
                break
            if _epoch(moment) >= world.start_ts - 35 * 86400:  # older renewals: never pulled
                emit("customer.subscription.updated", _stripe_subscription(world, sub, moment),
                     _epoch(moment))
            boundary = _next_month(boundary)
        final_at = end - dt.timedelta(seconds=1)
        if sub.ended_at is not None and sub.ended_at < end:
            emit("customer.subscription.deleted", _stripe_subscription(world, sub, sub.ended_at),
                 _epoch(sub.ended_at))
            final_at = sub.ended_at
        subscriptions.append(_stripe_subscription(world, sub, final_at))

    # invoices: finalized (open) when created, paid when their charge succeeded
    for invoice in objects["invoices"]:
        opened = _copy(invoice)
        opened.update({"amount_paid": 0, "amount_remaining": invoice["amount_due"],
                       "attempt_count": 0, "attempted": False, "auto_advance": True,
                       "status": "open"})
        opened["status_transitions"]["paid_at"] = None
        emit("invoice.finalized", opened if invoice["status"] == "paid" else invoice,
             invoice["created"])
        if invoice["status"] == "paid":
            emit("invoice.paid", invoice, invoice["status_transitions"]["paid_at"])

    refunds_by_charge: dict[str, list[dict[str, Any]]] = {}
    for refund in objects["refunds"]:
        emit("refund.created", refund, refund["created"])
        refunds_by_charge.setdefault(refund["charge"], []).append(refund)
    for charge in objects["charges"]:
        refunded = refunds_by_charge.get(charge["id"], [])
        if refunded:
            before = _copy(charge)
            before.update({"amount_refunded": 0, "refunded": False})
            emit("charge.succeeded", before, charge["created"])
            emit("charge.refunded", charge, max(r["created"] for r in refunded))
        else:
            emit("charge.succeeded", charge, charge["created"])
    for payout in objects["payouts"]:
        emit("payout.created", payout, payout["created"])

    # one card-issuer inquiry (no funds move), opened and closed inside the world when it fits
    disputes = []
    rng = _stream(seed, "disputes")
    candidates = [
        c for c in objects["charges"]
        if c["metadata"]["account_id"] not in planted_accounts and not refunds_by_charge.get(c["id"])
    ]
    if candidates:
        charge = rng.choice(candidates)
        opened_at = charge["created"] + rng.randint(2 * 3600, 6 * 3600)
        closed_at = opened_at + rng.randint(12 * 3600, 20 * 3600)
        dispute = {
            "id": stripe_id("dp", seed, charge["id"]),
            "object": "dispute",
            "amount": charge["amount"],
            "balance_transactions": [],
            "charge": charge["id"],
            "created": opened_at,
            "currency": charge["currency"],
            "evidence_details": {"due_by": opened_at + 7 * 86400, "has_evidence": False,
                                 "past_due": False, "submission_count": 0},
            "is_charge_refundable": True,
            "livemode": False,
            "metadata": {"account_id": charge["metadata"]["account_id"]},
            "payment_intent": None,
            "reason": "general",
            "status": "warning_needs_response",
        }
        if opened_at < world.end_ts:
            emit("charge.dispute.created", dispute, opened_at)
            if closed_at < world.end_ts:
                dispute = {**_copy(dispute), "status": "warning_closed"}
                emit("charge.dispute.closed", dispute, closed_at)
            disputes.append(dispute)

    objects["subscriptions"] = subscriptions
    objects["disputes"] = disputes
    objects["credit_notes"] = []  # the sample billing system never issues credit notes
    objects["events"] = events


def _refund(
    refund_id: str, charge_id: str, amount: int, currency: str, created: int, txn: str
) -> dict[str, Any]:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": txn,
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "livemode": False,
        "metadata": {},
        "payment_intent": None,
        "reason": "requested_by_customer",
        "receipt_number": None,
        "status": "succeeded",
    }


def _balance_transaction(
    txn_id: str, kind: str, source: str, amount: int, currency: str, created: int
) -> dict[str, Any]:
    fee = stripe_fee(amount) if kind == "charge" else 0
    available_on = (created // 86400 + 1) * 86400 if kind == "charge" else created
    return {
        "id": txn_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": available_on,
        "created": created,
        "currency": currency,
        "description": None,
        "exchange_rate": None,
        "fee": fee,
        "livemode": False,
        "fee_details": (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        ),  # fmt: skip
        "net": amount - fee,
        "reporting_category": kind,
        "source": source,
        "status": "available",
        "type": kind,
    }


# ---------------------------------------------------------------------------------------------
# writing


def _ts_array(seconds: Iterable[int] | np.ndarray) -> pa.Array:
    values = np.asarray(list(seconds) if not isinstance(seconds, np.ndarray) else seconds)
    return pa.array(values.astype(np.int64).astype("datetime64[s]").astype("datetime64[us]"))


def _opt_ts_array(values: list[dt.datetime | None]) -> pa.Array:
    return pa.array(values, pa.timestamp("us"))


_PG_TYPES = {"DECIMAL(38,12)": "NUMERIC(38,12)"}


_ARROW_TYPES = {
    "VARCHAR": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int32(), "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"), "DECIMAL(38,12)": pa.decimal128(38, 12),
}


def _billing_tables(world: World, counters: pd.DataFrame) -> dict[str, pa.Table]:
    accounts = world.accounts
    tables: dict[str, pa.Table] = {}
    tables["accounts"] = pa.table(
        {
            "account_id": [a.account_id for a in accounts],
            "name": [a.name for a in accounts],
            "currency": [a.currency for a in accounts],
            "billing_anchor_day": pa.array([1] * len(accounts), pa.int32()),
            "stripe_customer_id": [a.stripe_customer_id for a in accounts],
            "created_at": _opt_ts_array([a.created_at for a in accounts]),
        }
    )
    tables["plans"] = pa.table(
        {
            "plan_id": [p.plan_id for p in world.plans],
            "name": [p.name for p in world.plans],
            "currency": [p.currency for p in world.plans],
            "base_fee_minor": pa.array([p.base_fee_minor for p in world.plans], pa.int64()),
        }
    )
    subs = world.subscriptions
    tables["subscriptions"] = pa.table(
        {
            "subscription_id": [s.subscription_id for s in subs],
            "account_id": [s.account_id for s in subs],
            "plan_id": [s.plan_id for s in subs],
            "started_at": _opt_ts_array([s.started_at for s in subs]),
            "ended_at": _opt_ts_array([s.ended_at for s in subs]),
            "rounding_mode": pa.array([None] * len(subs), pa.string()),
        }
    )
    effective_from = min(PRICE_EFFECTIVE_FROM, dt.date(world.start.year, 1, 1))
    rows: list[tuple[str, str, str, int, int, int | None, Decimal]] = []
    for (plan_id, category), book in sorted(world.books.items()):
        for i, tier in enumerate(book.tiers):
            price_id = f"price_{plan_id}_{category}_{i + 1}"
            rows.append(
                (price_id, plan_id, category, book.included, tier.start, tier.end, tier.unit_price)
            )
    rows.sort()
    tables["price_books"] = pa.table(
        {
            "price_id": [r[0] for r in rows],
            "plan_id": [r[1] for r in rows],
            "category": [r[2] for r in rows],
            "effective_from": pa.array([effective_from] * len(rows), pa.date32()),
            "effective_to": pa.array([None] * len(rows), pa.date32()),
            "pricing_model": pa.array(["graduated"] * len(rows), pa.string()),
            "included_quantity": pa.array([r[3] for r in rows], pa.int64()),
            "reserved_quantity": pa.array([None] * len(rows), pa.int64()),
            "reserved_unit_price_decimal": pa.array([None] * len(rows), pa.decimal128(38, 12)),
            "spend_cap_minor": pa.array([None] * len(rows), pa.int64()),
            "package_size": pa.array([None] * len(rows), pa.int64()),
            "spike_multiplier": pa.array([None] * len(rows), pa.decimal128(38, 12)),
            "tier_start": pa.array([r[4] for r in rows], pa.int64()),
            "tier_end": pa.array([r[5] for r in rows], pa.int64()),
            "unit_price_decimal": pa.array([r[6] for r in rows], pa.decimal128(38, 12)),
        }
    )
    credits = _credits(world)
    tables["credits"] = pa.table(
        {
            "credit_id": pa.array([c.credit_id for c in credits], pa.string()),
            "account_id": pa.array([c.account_id for c in credits], pa.string()),
            "currency": pa.array([c.currency for c in credits], pa.string()),
            "amount_minor": pa.array([c.amount_minor for c in credits], pa.int64()),
            "granted_at": _opt_ts_array([c.granted_at for c in credits]),
            "expires_at": _opt_ts_array([c.expires_at for c in credits]),
            "reason": pa.array([c.reason for c in credits], pa.string()),
        }
    )
    commitments = _commitments(world)
    tables["commitments"] = pa.table(
        {
            "commitment_id": pa.array([c.commitment_id for c in commitments], pa.string()),
            "account_id": pa.array([c.account_id for c in commitments], pa.string()),
            "currency": pa.array([c.currency for c in commitments], pa.string()),
            "minimum_minor": pa.array([c.minimum_minor for c in commitments], pa.int64()),
            "starts_on": pa.array([c.starts_on for c in commitments], pa.date32()),
            "ends_on": pa.array([c.ends_on for c in commitments], pa.date32()),
        }
    )
    # the sample catalogue uses graduated tiers only: discounts and spike releases are empty
    for name in ("discounts", "spike_releases"):
        tables[name] = pa.table(
            {col: pa.array([], _ARROW_TYPES[sql_type]) for col, sql_type in BILLING_TABLES[name]}
        )
    day_values = counters["day"].to_numpy(dtype=np.int64)
    tables["usage_counters"] = pa.table(
        {
            "day": pa.array(
                (np.datetime64(world.start, "D") + day_values).astype("datetime64[D]"), pa.date32()
            ),
            "account_id": pa.array(counters["account_id"].tolist(), pa.string()),
            "category": pa.array(counters["category"].tolist(), pa.string()),
            "quantity": pa.array(counters["quantity"].to_numpy(dtype=np.int64), pa.int64()),
            "updated_at": _ts_array(counters["updated_at"].to_numpy(dtype=np.int64)),
        }
    )
    return tables


def _metering_table(frame: pd.DataFrame) -> pa.Table:
    return pa.table(
        {
            "hour_start": _ts_array(frame["hour_start"].to_numpy(dtype=np.int64)),
            "account_id": pa.array(frame["account_id"].tolist(), pa.string()),
            "project_id": pa.array(frame["project_id"].tolist(), pa.string()),
            "category": pa.array(frame["category"].tolist(), pa.string()),
            "outcome": pa.array(frame["outcome"].tolist(), pa.string()),
            "quantity": pa.array(frame["quantity"].to_numpy(dtype=np.int64), pa.int64()),
            "updated_at": _ts_array(frame["updated_at"].to_numpy(dtype=np.int64)),
        }
    )


def _write_duckdb(
    path: Path, tables: dict[str, pa.Table], spec: dict[str, list[tuple[str, str]]]
) -> None:
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        for name, columns in spec.items():
            arrow_table = tables[name]
            con.register("src_arrow", arrow_table)
            select = ", ".join(f'CAST("{col}" AS {typ}) AS "{col}"' for col, typ in columns)
            con.execute(f'CREATE TABLE "{name}" AS SELECT {select} FROM src_arrow')
            con.unregister("src_arrow")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _write_postgres(
    url: str, schema: str, tables: dict[str, pa.Table], spec: dict[str, list[tuple[str, str]]]
) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            for name, columns in spec.items():
                target = sql.Identifier(schema, name)
                cols = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL(_PG_TYPES.get(typ, typ)))
                    for col, typ in columns
                )
                cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, cols))
                names = sql.SQL(", ").join(sql.Identifier(col) for col, _ in columns)
                buffer = io.BytesIO()
                pa_csv.write_csv(
                    tables[name].select([col for col, _ in columns]),
                    buffer,
                    pa_csv.WriteOptions(include_header=False),
                )
                data = buffer.getvalue()
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, names)
                with cur.copy(copy_sql) as copy:
                    chunk = 1 << 20
                    for offset in range(0, len(data), chunk):
                        copy.write(data[offset : offset + chunk])
        conn.commit()


def _dump_json(path: Path, value: Any) -> None:
    path.write_text(
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )


# ---------------------------------------------------------------------------------------------
# entry point


def generate(
    out_dir: Path,
    *,
    seed: int = 7,
    accounts: int = 40,
    days: int = 34,
    start: dt.date = dt.date(2026, 10, 1),
    postgres_url: str | None = None,
    pg_schema_prefix: str = "src",
    plant: bool = True,
) -> dict[str, Any]:
    """Write the sample world under `out_dir` and return its manifest (also `manifest.json`)."""
    if accounts < 1 or days < 1:
        raise ValueError("accounts and days must be >= 1")
    if accounts >= 9999:
        raise ValueError("accounts must stay below 9999 (acct_9999 is the planted unknown account)")
    out_dir = Path(out_dir)
    sources = out_dir / "sources"
    stripe_dir = sources / "stripe"
    if stripe_dir.exists():
        shutil.rmtree(stripe_dir)
    stripe_dir.mkdir(parents=True)

    end = start + dt.timedelta(days=days)
    account_list = _accounts(seed, accounts, start)
    plans = _plans()
    subscriptions, changed = _subscriptions(seed, account_list, start, end)
    world = World(
        seed=seed,
        start=start,
        days=days,
        start_ts=_epoch(start),
        end_ts=_epoch(end),
        accounts=account_list,
        plans=plans,
        books=_price_books(plans, seed),
        subscriptions=subscriptions,
        plan_changed=changed,
        closed_months=_closed_months(start, days),
    )
    m = _metering(world)

    # the billing system's invoices (before any planted fault)
    expected: list[dict[str, Any]] = []
    for month in world.closed_months:
        usage = _period_usage(world, m, month)
        for account in world.accounts:
            invoice = _rate_invoice(world, account, month, usage)
            if invoice is not None:
                expected.append(invoice)
    expected.sort(key=lambda inv: (inv["account_id"], inv["period"]))
    _apply_contracts(world, expected)
    first_month = world.closed_months[0] if world.closed_months else None
    first_invoices = {
        inv["account_id"]: inv
        for inv in expected
        if first_month is not None and inv["period"] == first_month.strftime("%Y-%m")
    }
    plants = _choose_plants(world, m, first_invoices, first_month, Decimal("0.001"))

    entries: list[dict[str, Any]] = []
    extra_rows: list[dict[str, Any]] = []
    counters = _counters(world, m)
    acct_ids = [a.account_id for a in world.accounts]

    def day_str(index: int) -> str:
        return world.day(index).isoformat()

    if plant:
        keys = ["day", "account", "category"]

        def counter_mask(key: tuple[int, str, int]) -> pd.Series:
            account, category, day = key
            return (
                (counters[keys[0]] == day)
                & (counters["account"] == account)
                & (counters["category"] == category)
            )

        if plants.counter_drop:
            a, c, d = plants.counter_drop
            counters = counters[~counter_mask(plants.counter_drop)]
            entries.append(
                _entry("billing_counter_dropped", "billing",
                       f"usage_counters has no row for {acct_ids[a]} / {c} on {day_str(d)}",
                       [{"check": "usage_daily", "status": "missing_in_billing",
                         "account_id": acct_ids[a], "category": c, "day": day_str(d)}])
            )  # fmt: skip
        if plants.counter_dup:
            a, c, d = plants.counter_dup
            counters = pd.concat(
                [counters, counters[counter_mask(plants.counter_dup)]], ignore_index=True
            )
            entries.append(
                _entry("billing_counter_duplicated", "billing",
                       f"usage_counters row for {acct_ids[a]} / {c} on {day_str(d)} written twice",
                       [{"check": "usage_daily", "status": "duplicate_in_billing",
                         "account_id": acct_ids[a], "category": c, "day": day_str(d)}])
            )  # fmt: skip
        if plants.counter_wrong:
            a, c, d = plants.counter_wrong
            mask = counter_mask(plants.counter_wrong)
            old = int(counters.loc[mask, "quantity"].iloc[0])
            new = old + max(100, -(-old * 7 // 100))
            counters.loc[mask, "quantity"] = new
            entries.append(
                _entry("billing_counter_wrong_count", "billing",
                       f"usage_counters for {acct_ids[a]} / {c} on {day_str(d)} says {new}, metering {old}",
                       [{"check": "usage_daily", "status": "drift",
                         "account_id": acct_ids[a], "category": c, "day": day_str(d)}])
            )  # fmt: skip
        if plants.meter_dup:
            s, h = plants.meter_dup
            row = {
                "hour_start": int(m.hours[h]),
                "account_id": acct_ids[int(m.s_account[s])],
                "project_id": m.s_project[s],
                "category": m.s_category[s],
                "outcome": "accepted",
                "quantity": int(m.qty[s, h]),
                "updated_at": int(m.upd[s, h]),
            }
            extra_rows.append(row)
            entries.append(
                _entry("metering_duplicate_row", "metering",
                       f"usage_hourly row {row['account_id']} / {row['project_id']} / {row['category']} "
                       f"at {_from_epoch(row['hour_start'])} written twice, identically",
                       [{"check": "quarantine", "status": "quarantined", "reason": "duplicate_key",
                         "account_id": row["account_id"], "category": row["category"],
                         "day": _from_epoch(row["hour_start"]).date().isoformat()}])
            )  # fmt: skip
        if plants.meter_unknown:
            row = plants.meter_unknown
            extra_rows.append(row)
            entries.append(
                _entry("metering_unknown_account", "metering",
                       f"usage_hourly has an accepted row for {UNKNOWN_ACCOUNT}, unknown to billing",
                       [{"check": "quarantine", "status": "quarantined", "reason": "unknown_account",
                         "account_id": UNKNOWN_ACCOUNT, "category": row["category"],
                         "day": _from_epoch(row["hour_start"]).date().isoformat()}])
            )  # fmt: skip
        if plants.meter_negative:
            row = plants.meter_negative
            extra_rows.append(row)
            entries.append(
                _entry("metering_negative_quantity", "metering",
                       f"usage_hourly has quantity -500 for {row['account_id']} / {NEGATIVE_PROJECT} / "
                       f"{row['category']} at {_from_epoch(row['hour_start'])}",
                       [{"check": "quarantine", "status": "quarantined", "reason": "negative_quantity",
                         "account_id": row["account_id"], "category": row["category"],
                         "day": _from_epoch(row["hour_start"]).date().isoformat()}])
            )  # fmt: skip

    planted_accounts = {acct for acct in (plants.invoice_missing,) if acct}
    if plants.line_wrong:
        planted_accounts.add(plants.line_wrong[0])
    if plants.late_after_close:
        planted_accounts.add(acct_ids[int(m.s_account[plants.late_after_close[0]])])
    stripe_objects, orphan = _stripe_objects(world, expected, plants, plant, planted_accounts)

    if plant and first_month is not None:
        period = first_month.strftime("%Y-%m")
        if plants.invoice_missing:
            entries.append(
                _entry("stripe_invoice_missing", "stripe",
                       f"the {period} invoice of {plants.invoice_missing} (and its charge) never reached Stripe",
                       [{"check": "invoice_totals", "status": "missing_in_stripe",
                         "account_id": plants.invoice_missing, "period": period}])
            )  # fmt: skip
        if plants.line_wrong:
            account_id, category = plants.line_wrong
            entries.append(
                _entry("stripe_line_wrong_quantity", "stripe",
                       f"the {period} invoice of {account_id} bills {category} at +13% quantity, re-rated",
                       [{"check": "invoice_lines", "status": "drift", "account_id": account_id,
                         "period": period, "category": category},
                        {"check": "invoice_totals", "status": "drift", "account_id": account_id,
                         "period": period}])
            )  # fmt: skip
        if orphan:
            entries.append(
                _entry("stripe_refund_without_charge", "stripe",
                       f"refund {orphan[0]} points at charge {orphan[1]}, which does not exist",
                       [{"check": "payments", "status": "missing_in_stripe", "object_id": orphan[0]}])
            )  # fmt: skip
        if plants.late_after_close:
            s, h = plants.late_after_close
            account_id = acct_ids[int(m.s_account[s])]
            category = m.s_category[s]
            upd = plants.late_after_close_upd
            new_qty = int(m.qty[s, h]) + 1000
            extra_rows.append(
                {
                    "hour_start": int(m.hours[h]),
                    "account_id": account_id,
                    "project_id": m.s_project[s],
                    "category": category,
                    "outcome": "accepted",
                    "quantity": new_qty,
                    "updated_at": upd,
                }
            )
            day = h // 24
            account_index = int(m.s_account[s])
            base = counters[
                (counters["day"] == day)
                & (counters["account"] == account_index)
                & (counters["category"] == category)
            ]
            latest = int(base.sort_values("updated_at")["quantity"].iloc[-1])
            counters = pd.concat(
                [counters, pd.DataFrame([{"day": day, "account": account_index, "category": category,
                                          "quantity": latest + 1000, "updated_at": upd}])],
                ignore_index=True,
            )  # fmt: skip
            entries.append(
                _entry("late_event_after_close", "metering",
                       f"a late version (+1000) of {account_id} / {m.s_project[s]} / {category} at "
                       f"{_from_epoch(int(m.hours[h]))} arrived at {_from_epoch(upd)}, after the {period} "
                       "invoice was issued; Stripe does not include it",
                       [{"check": "issued_vs_current", "status": "drift", "account_id": account_id,
                         "period": period, "category": category}])
            )  # fmt: skip

    for i, entry in enumerate(entries):
        entry["id"] = f"d{i + 1:02d}"

    # --- write the sources
    counters = counters.assign(account_id=[acct_ids[int(a)] for a in counters["account"]])
    counters = counters.sort_values(["day", "account_id", "category", "updated_at"], kind="stable")
    counters = counters.reset_index(drop=True)
    metering_frame = _metering_frame(world, m, extra_rows)
    metering_tables = {"usage_hourly": _metering_table(metering_frame)}
    billing_tables = _billing_tables(world, counters)
    duck_paths = (sources / "metering.duckdb", sources / "billing.duckdb")
    if postgres_url:
        for path in duck_paths:
            for stale in (path, path.with_name(path.name + ".wal")):
                stale.unlink(missing_ok=True)
        _write_postgres(
            postgres_url, f"{pg_schema_prefix}_metering", metering_tables, METERING_TABLES
        )
        _write_postgres(postgres_url, f"{pg_schema_prefix}_billing", billing_tables, BILLING_TABLES)
    else:
        _write_duckdb(duck_paths[0], metering_tables, METERING_TABLES)
        _write_duckdb(duck_paths[1], billing_tables, BILLING_TABLES)

    for resource in STRIPE_RESOURCES:
        _dump_json(stripe_dir / f"{resource}.json", stripe_objects[resource])
    _dump_json(sources / "expected_invoices.json", expected)

    manifest = {
        "seed": seed,
        "accounts": accounts,
        "days": days,
        "first_day": start.isoformat(),
        "last_day": world.last_day.isoformat(),
        "generator_version": GENERATOR_VERSION,
        "discrepancies": entries,
    }
    _dump_json(out_dir / "manifest.json", manifest)
    return manifest


def _entry(
    kind: str, source: str, description: str, expected: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": "",
        "kind": kind,
        "source": source,
        "description": description,
        "expected": expected,
    }
