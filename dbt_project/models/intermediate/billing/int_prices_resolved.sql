-- Price resolution by effective date: one row per subscription period, category and tier of
-- the price book row set in force at the segment's start
-- (effective_from <= segment_start < coalesce(effective_to, infinity)), of the segment's plan.
-- A plan prices a category with one row per tier; the per-category terms (pricing model,
-- included and reserved volume, spend cap, package size, spike multiplier) repeat on each
-- tier row and must agree. price_invalid_reason names the first broken rule of the set; a set
-- with a reason prices nothing and is reported (fct_billable_usage.unpriced_reason).
with

segments as (
    select * from {{ ref('int_subscription_periods') }}
),

price_books as (
    select * from {{ ref('int_billing_price_books_snapshot') }}
),

matched as (
    select
        segments.subscription_period_key,
        segments.account_id,
        segments.subscription_id,
        segments.period,
        price_books.price_id,
        price_books.plan_id,
        price_books.category,
        price_books.pricing_model,
        coalesce(price_books.included_quantity, 0) as included_quantity,
        coalesce(price_books.reserved_quantity, 0) as reserved_quantity,
        price_books.reserved_unit_price_decimal,
        price_books.spend_cap_minor,
        price_books.package_size,
        price_books.spike_multiplier,
        price_books.tier_start,
        price_books.tier_end,
        price_books.unit_price_decimal
    from segments
    inner join price_books
        on
            segments.plan_id = price_books.plan_id
            and segments.segment_start >= price_books.effective_from
            and (price_books.effective_to is null or segments.segment_start < price_books.effective_to)
),

checked as (
    select
        matched.*,
        count(*) over (partition by matched.subscription_period_key, matched.category) as tier_count,
        case
            when max(matched.pricing_model) over (partition by matched.subscription_period_key, matched.category)
                = min(matched.pricing_model) over (partition by matched.subscription_period_key, matched.category)
                then 1
            else 2
        end as model_variants,
        max(matched.included_quantity) over (partition by matched.subscription_period_key, matched.category)
        - min(matched.included_quantity)
            over (partition by matched.subscription_period_key, matched.category)
            as included_spread,
        max(matched.reserved_quantity) over (partition by matched.subscription_period_key, matched.category)
        - min(matched.reserved_quantity)
            over (partition by matched.subscription_period_key, matched.category)
            as reserved_spread,
        sum(
            case when matched.tier_start is null
                    or matched.tier_start < 0
                    or (matched.tier_end is not null and matched.tier_end <= matched.tier_start)
                    or matched.unit_price_decimal is null or matched.unit_price_decimal < 0 then 1
                else 0
            end)
            over (partition by matched.subscription_period_key, matched.category) as bad_tiers,
        min(matched.tier_start)
            over (partition by matched.subscription_period_key, matched.category)
            as first_tier_start
    from matched
)

select
    {{ dbt.concat(["subscription_period_key", "'|'", "category", "'|'", "price_id"]) }} as price_resolution_key,
    subscription_period_key,
    account_id,
    subscription_id,
    period,
    price_id,
    plan_id,
    category,
    pricing_model,
    included_quantity,
    reserved_quantity,
    reserved_unit_price_decimal,
    spend_cap_minor,
    package_size,
    spike_multiplier,
    tier_start,
    tier_end,
    unit_price_decimal,
    case
        when pricing_model is null or pricing_model not in ('per_unit', 'graduated', 'volume', 'package')
            then 'unknown_pricing_model'
        when model_variants > 1 or included_spread <> 0 or reserved_spread <> 0
            then 'inconsistent_price_rows'
        when bad_tiers > 0 or first_tier_start <> 0 then 'invalid_tiers'
        when pricing_model in ('per_unit', 'package') and tier_count > 1 then 'invalid_tiers'
        when pricing_model = 'package' and (package_size is null or package_size <= 0) then 'invalid_package_size'
        when included_quantity < 0 or reserved_quantity < 0 then 'negative_volume'
        when reserved_quantity > 0 and (reserved_unit_price_decimal is null or reserved_unit_price_decimal < 0)
            then 'missing_reserved_price'
        when spend_cap_minor < 0 then 'negative_spend_cap'
        when spike_multiplier <= 0 then 'invalid_spike_multiplier'
    end as price_invalid_reason
from checked
