"""The source contracts (docs/sources.md): the tables a metering store and a billing database
hold, with their columns and SQL types.

One place: the sample world writes exactly these tables, and ingest's raw tables
(`ingest/raw_schema.py`) are these columns plus the batch stamps.
"""

from __future__ import annotations

# table -> [(column, SQL type)]
METERING_TABLES: dict[str, list[tuple[str, str]]] = {
    "usage_hourly": [
        ("hour_start", "TIMESTAMP"),
        ("account_id", "VARCHAR"),
        ("project_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("outcome", "VARCHAR"),
        ("quantity", "BIGINT"),
        ("updated_at", "TIMESTAMP"),
    ],
}
BILLING_TABLES: dict[str, list[tuple[str, str]]] = {
    "accounts": [
        ("account_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("billing_anchor_day", "INTEGER"),
        ("stripe_customer_id", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
    ],
    "plans": [
        ("plan_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("base_fee_minor", "BIGINT"),
    ],
    "subscriptions": [
        ("subscription_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("plan_id", "VARCHAR"),
        ("started_at", "TIMESTAMP"),
        ("ended_at", "TIMESTAMP"),
        # how this contract rounds each line to the minor unit: half_even (NULL) or half_up
        ("rounding_mode", "VARCHAR"),
    ],
    "price_books": [
        ("price_id", "VARCHAR"),
        ("plan_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("effective_from", "DATE"),
        ("effective_to", "DATE"),
        # per_unit | graduated | volume | package (docs/pricing.md); one row per tier
        ("pricing_model", "VARCHAR"),
        ("included_quantity", "BIGINT"),
        # reserved volume, billed every period whether used or not, at its own unit price
        ("reserved_quantity", "BIGINT"),
        ("reserved_unit_price_decimal", "DECIMAL(38,12)"),
        # on-demand spend cap per period in the plan currency's minor units (NULL = none)
        ("spend_cap_minor", "BIGINT"),
        # package pricing: units per package (unit_price_decimal is the price of a package)
        ("package_size", "BIGINT"),
        # spike protection: a day's usage beyond this multiple of the trailing baseline is held
        ("spike_multiplier", "DECIMAL(38,12)"),
        ("tier_start", "BIGINT"),
        ("tier_end", "BIGINT"),
        ("unit_price_decimal", "DECIMAL(38,12)"),
    ],
    "usage_counters": [
        ("day", "DATE"),
        ("account_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("quantity", "BIGINT"),
        ("updated_at", "TIMESTAMP"),
    ],
    # prepaid credit grants, drawn down across billing periods; [granted_at, expires_at)
    "credits": [
        ("credit_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("amount_minor", "BIGINT"),
        ("granted_at", "TIMESTAMP"),
        ("expires_at", "TIMESTAMP"),
        ("reason", "VARCHAR"),
    ],
    # a minimum spend per billing period, trued up when the period's usage falls short;
    # [starts_on, ends_on)
    "commitments": [
        ("commitment_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("minimum_minor", "BIGINT"),
        ("starts_on", "DATE"),
        ("ends_on", "DATE"),
    ],
    # percentage (percent_off) or fixed (amount_off_minor per period) discounts, for the whole
    # invoice or one category (NULL), valid on [valid_from, valid_to)
    "discounts": [
        ("discount_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("percent_off", "DECIMAL(38,12)"),
        ("amount_off_minor", "BIGINT"),
        ("valid_from", "DATE"),
        ("valid_to", "DATE"),
    ],
    # a reviewer released the usage held by spike protection on (account, category, day)
    "spike_releases": [
        ("account_id", "VARCHAR"),
        ("category", "VARCHAR"),
        ("day", "DATE"),
        ("released_at", "TIMESTAMP"),
        ("released_by", "VARCHAR"),
    ],
}
