-- noqa: disable=RF03,RF04,LT05
-- What rating needs, one row per account, category, billing period and subscription segment:
-- the segment's usage, its price set's per-category terms, and why it cannot be priced, if so.
-- Rows: every usage segment, plus every (subscription period, category) whose price set
-- reserves volume (reserved volume is billed whether used or not).
with

usage_segments as (
    select * from {{ ref('int_usage_segments') }}
),

segments as (
    select * from {{ ref('int_subscription_periods') }}
),

prices as (
    select * from {{ ref('int_prices_resolved') }}
),

price_sets as (
    select
        subscription_period_key,
        category,
        max(pricing_model) as pricing_model,
        max(included_quantity) as included_quantity,
        max(reserved_quantity) as reserved_quantity,
        max(reserved_unit_price_decimal) as reserved_unit_price_decimal,
        max(spend_cap_minor) as spend_cap_minor,
        max(package_size) as package_size,
        max(price_invalid_reason) as price_invalid_reason
    from prices
    group by subscription_period_key, category
),

reserved_only as (
    select
        segments.account_id,
        price_sets.category,
        segments.period,
        segments.period_start,
        segments.period_end,
        segments.subscription_id,
        segments.subscription_period_key,
        cast(0 as {{ dbt.type_bigint() }}) as metered_quantity,
        cast(0 as {{ dbt.type_bigint() }}) as spike_quantity,
        cast(0 as {{ dbt.type_bigint() }}) as held_quantity
    from price_sets
    inner join segments
        on price_sets.subscription_period_key = segments.subscription_period_key
    left join usage_segments
        on
            price_sets.subscription_period_key = usage_segments.subscription_period_key
            and price_sets.category = usage_segments.category
    where
        price_sets.reserved_quantity > 0
        and usage_segments.usage_segment_key is null
),

units as (
    select
        account_id,
        category,
        period,
        period_start,
        period_end,
        subscription_id,
        subscription_period_key,
        metered_quantity,
        spike_quantity,
        held_quantity
    from usage_segments
    union all
    select * from reserved_only
)

select
    {{ dbt.concat(["units.account_id", "'|'", "units.category", "'|'", "units.period", "'|'", "coalesce(units.subscription_id, '')"]) }}
        as rating_key,
    units.account_id,
    units.category,
    units.period,
    units.period_start,
    units.period_end,
    units.subscription_id,
    units.subscription_period_key,
    segments.plan_id,
    coalesce(segments.currency, accounts.currency) as currency,
    segments.rounding_mode,
    segments.segment_days,
    segments.period_days,
    price_sets.pricing_model,
    price_sets.included_quantity,
    price_sets.reserved_quantity,
    price_sets.reserved_unit_price_decimal,
    price_sets.spend_cap_minor,
    price_sets.package_size,
    units.metered_quantity,
    units.spike_quantity,
    units.held_quantity,
    case
        when units.subscription_id is null then 'no_subscription'
        when price_sets.subscription_period_key is null then 'no_price'
        when segments.plan_currency is null or segments.plan_currency <> segments.currency then 'currency_mismatch'
        when currencies.currency is null then 'unknown_currency'
        else price_sets.price_invalid_reason
    end as unpriced_reason
from units
left join segments
    on units.subscription_period_key = segments.subscription_period_key
left join {{ ref('int_billing_accounts_snapshot') }} as accounts
    on units.account_id = accounts.account_id
left join {{ ref('currencies') }} as currencies
    on segments.currency = currencies.currency
left join price_sets
    on
        units.subscription_period_key = price_sets.subscription_period_key
        and units.category = price_sets.category
