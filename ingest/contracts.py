"""Row-level contracts of the raw tables: what makes a source row quarantined at ingest.

Only checks that need nothing but the row itself (and, for duplicates, the rest of its batch)
live here; checks that need another source (a metering account unknown to billing, an unknown
outcome) stay in dbt (`int_metering_usage_validated`). Reason codes, first match wins:

- `unparsable_timestamp` a required time column is missing or its text does not parse
- `missing_account`      account_id is NULL or empty
- `negative_quantity`    quantity < 0
- `negative_amount`      a money amount (integer minor units) < 0
- `unknown_category`     category not in the dbt seed `categories`
- `invalid_currency`     currency not an ISO 4217 code
- `duplicate_key`        a second copy of the natural key inside one batch (the first copy is kept)
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"

# ISO 4217 active alphabetic codes (list one, 2025), plus the fund/precious-metal codes.
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG
XDR XOF XPD XPF XPT XSU XTS XUA YER ZAR ZMW ZWG ZWL
""".split())

REASONS = (
    "unparsable_timestamp",
    "missing_account",
    "negative_quantity",
    "negative_amount",
    "unknown_category",
    "invalid_currency",
    "duplicate_key",
)


@functools.cache
def known_categories() -> tuple[str, ...]:
    """The data categories the contract knows: the dbt seed, the one place they are listed."""
    with (SEED_DIR / "categories.csv").open(newline="", encoding="utf-8") as f:
        return tuple(sorted(row["category"] for row in csv.DictReader(f)))


@dataclass(frozen=True)
class Contract:
    """What a row of one raw table must satisfy. Column names refer to `RAW_TABLES`."""

    time_columns: tuple[str, ...] = ()      # required; text is parsed, failure quarantines
    account: str | None = None              # must be present
    quantity: str | None = None             # must be >= 0
    amounts: tuple[str, ...] = ()           # money in minor units, each must be >= 0
    category: str | None = None             # must be a known category
    currency: str | None = None             # must be ISO 4217
    natural_key: tuple[str, ...] = ()       # one row per key in a batch; () = no check
    day_column: str | None = None           # the quarantine `day` (date of this column)
    optional_time_columns: tuple[str, ...] = field(default=())  # parsed if text, may be NULL


CONTRACTS: dict[str, Contract] = {
    "metering_usage_hourly": Contract(
        time_columns=("hour_start", "updated_at"),
        account="account_id",
        quantity="quantity",
        category="category",
        natural_key=("hour_start", "account_id", "project_id", "category", "outcome", "updated_at"),
        day_column="hour_start",
    ),
    "billing_accounts": Contract(
        account="account_id", currency="currency", natural_key=("account_id",),
        optional_time_columns=("created_at",),
    ),
    "billing_plans": Contract(currency="currency", natural_key=("plan_id",)),
    "billing_subscriptions": Contract(
        time_columns=("started_at",), optional_time_columns=("ended_at",),
        account="account_id", natural_key=("subscription_id",),
    ),
    "billing_price_books": Contract(
        time_columns=("effective_from",), optional_time_columns=("effective_to",),
        category="category", natural_key=("price_id",),
    ),
    "billing_credits": Contract(
        time_columns=("granted_at",), optional_time_columns=("expires_at",),
        account="account_id", amounts=("amount_minor",), currency="currency",
        natural_key=("credit_id",), day_column="granted_at",
    ),
    "billing_commitments": Contract(
        time_columns=("starts_on",), optional_time_columns=("ends_on",),
        account="account_id", amounts=("minimum_minor",), currency="currency",
        natural_key=("commitment_id",), day_column="starts_on",
    ),
    "billing_discounts": Contract(
        time_columns=("valid_from",), optional_time_columns=("valid_to",),
        account="account_id", amounts=("amount_off_minor",), currency="currency",
        natural_key=("discount_id",), day_column="valid_from",
    ),
    "billing_spike_releases": Contract(
        time_columns=("day", "released_at"), account="account_id", category="category",
        natural_key=("account_id", "category", "day"), day_column="day",
    ),
    # A counter row repeated in one batch is the billing system double-counting: reconciliation
    # reports it (`duplicate_in_billing`), so counters get no duplicate_key quarantine.
    "billing_usage_counters": Contract(
        time_columns=("day", "updated_at"), account="account_id", quantity="quantity",
        day_column="day",
    ),
}


def contract(raw_table: str) -> Contract:
    return CONTRACTS.get(raw_table, Contract())
