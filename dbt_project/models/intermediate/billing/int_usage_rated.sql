-- Rating: one row per account, category and period.
--   billable_quantity = max(0, metered - included)
--   amount_decimal    = sum over tiers of
--                       max(0, min(billable, coalesce(tier_end, billable)) - tier_start) * unit price
--   amount_minor      = amount_decimal * minor_unit_factor, rounded once, half to even.
-- Tiers are half-open, in billable units after the allowance. No division anywhere.
with

priced as (
    select * from {{ ref('int_usage_priced') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

tier_billable as (
    select
        priced.*,
        greatest(0, priced.metered_quantity - coalesce(priced.included_quantity, 0)) as billable_quantity
    from priced
),

tier_amounts as (
    select
        tier_billable.*,
        cast(
            greatest(
                0,
                least(
                    tier_billable.billable_quantity,
                    coalesce(tier_billable.tier_end, tier_billable.billable_quantity)
                ) - tier_billable.tier_start
            ) * tier_billable.unit_price_decimal
            as {{ money_type() }}
        ) as tier_amount_decimal
    from tier_billable
),

rated as (
    select
        usage_period_key,
        account_id,
        category,
        period,
        period_start,
        period_end,
        currency,
        subscription_id,
        plan_id,
        metered_quantity,
        count(price_id) > 0 as is_priced,
        coalesce(max(included_quantity), 0) as included_quantity,
        max(billable_quantity) as billable_quantity,
        cast(coalesce(sum(tier_amount_decimal), 0) as {{ money_type() }}) as amount_decimal
    from tier_amounts
    group by
        usage_period_key,
        account_id,
        category,
        period,
        period_start,
        period_end,
        currency,
        subscription_id,
        plan_id,
        metered_quantity
),

in_minor_units as (
    select
        rated.*,
        cast(rated.amount_decimal * currencies.minor_unit_factor as {{ money_type() }}) as amount_minor_unrounded
    from rated
    left join currencies
        on rated.currency = currencies.currency
)

select
    usage_period_key,
    account_id,
    category,
    period,
    period_start,
    period_end,
    currency,
    subscription_id,
    plan_id,
    is_priced,
    metered_quantity,
    included_quantity,
    billable_quantity,
    amount_decimal,
    {{ round_half_even('amount_minor_unrounded') }} as amount_minor
from in_minor_units
