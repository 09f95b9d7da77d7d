-- noqa: disable=RF03,RF04,LT05
-- Rating: one row per account, category, billing period and subscription segment.
--
--   included  = round_half_even(included_quantity * segment_days / period_days)   (prorated)
--   reserved  = round_half_even(reserved_quantity * segment_days / period_days)   (prorated)
--   rated     = metered - held                         (held: spike protection, not released)
--   on_demand = max(0, rated - included - reserved)
--   cost(q), by pricing model, over the tiers [tier_start, tier_end) of on-demand units:
--     per_unit / graduated  sum over tiers of max(0, min(q, coalesce(tier_end, q)) - tier_start) * unit_price
--     volume                q * unit_price of the tier with tier_start <= q < tier_end (0 when q = 0)
--     package               ceil(q / package_size) * unit_price   (unit_price is per package)
--   With a spend cap C (minor units), billed = the largest q <= on_demand with
--   cost(q) * minor_unit_factor <= C; the rest is over_budget_quantity, reported, never billed.
--   usage amount   = cost(billed) exact, rounded once to minor units by the contract's mode
--   reserved amount = reserved * reserved_unit_price, rounded once the same way.
--   An unpriced row (unpriced_reason set, including a volume quantity outside every tier) bills
--   nothing: included, reserved, billed, over_budget and both amounts are 0.
-- No division of money anywhere: quotients go through the exact floor_div / round_div macros.
with

inputs as (
    select * from {{ ref('int_usage_rating_inputs') }}
),

tiers as (
    select * from {{ ref('int_prices_resolved') }}
    where price_invalid_reason is null
),

currencies as (
    select * from {{ ref('currencies') }}
),

quantities as (
    select
        inputs.*,
        currencies.minor_unit_factor,
        case when inputs.unpriced_reason is null
                then
                    {{ round_div('inputs.included_quantity * inputs.segment_days', 'inputs.period_days') }}
            else 0
        end as included_prorated,
        case when inputs.unpriced_reason is null
                then
                    {{ round_div('inputs.reserved_quantity * inputs.segment_days', 'inputs.period_days') }}
            else 0
        end as reserved_prorated
    from inputs
    left join currencies
        on inputs.currency = currencies.currency
),

on_demand as (
    select
        quantities.*,
        quantities.metered_quantity - quantities.held_quantity as rated_quantity,
        greatest(
            0,
            quantities.metered_quantity - quantities.held_quantity
            - quantities.included_prorated - quantities.reserved_prorated
        ) as on_demand_quantity
    from quantities
),

-- the spend cap: for every tier, the largest on-demand quantity the cap affords in it
tier_costs as (
    select
        on_demand.rating_key,
        on_demand.pricing_model,
        on_demand.on_demand_quantity,
        on_demand.spend_cap_minor,
        on_demand.package_size,
        on_demand.minor_unit_factor,
        tiers.tier_start,
        tiers.tier_end,
        tiers.unit_price_decimal,
        coalesce(sum((tiers.tier_end - tiers.tier_start) * tiers.unit_price_decimal) over (
            partition by on_demand.rating_key
            order by tiers.tier_start
            rows between unbounded preceding and 1 preceding
        ), 0) * on_demand.minor_unit_factor as cost_before_tier_minor
    from on_demand
    inner join tiers
        on
            on_demand.subscription_period_key = tiers.subscription_period_key
            and on_demand.category = tiers.category
    where on_demand.unpriced_reason is null
),

tier_affordable as (
    select
        rating_key,
        case
            when pricing_model in ('per_unit', 'graduated') and cost_before_tier_minor <= spend_cap_minor
                then
                    case
                        when unit_price_decimal = 0 then coalesce(tier_end, on_demand_quantity)
                        else least(
                                coalesce(tier_end, on_demand_quantity),
                                tier_start
                                + {{ floor_div('spend_cap_minor - cost_before_tier_minor', 'unit_price_decimal * minor_unit_factor') }}
                            )
                    end
            when pricing_model = 'volume'
                then
                    case
                        when unit_price_decimal = 0 then coalesce(tier_end - 1, on_demand_quantity)
                        else least(
                                coalesce(tier_end - 1, on_demand_quantity),
                                {{ floor_div('spend_cap_minor', 'unit_price_decimal * minor_unit_factor') }}
                            )
                    end
            when pricing_model = 'package' then
                case
                    when unit_price_decimal = 0 then on_demand_quantity
                    else {{ floor_div('spend_cap_minor', 'unit_price_decimal * minor_unit_factor') }} * package_size
                end
        end as affordable_quantity,
        tier_start
    from tier_costs
    where spend_cap_minor is not null
),

affordable as (
    select
        rating_key,
        max(affordable_quantity) as affordable_quantity
    from tier_affordable
    -- a volume tier affords only quantities inside it
    where affordable_quantity >= tier_start
    group by rating_key
),

billed as (
    select
        on_demand.*,
        case
            when on_demand.unpriced_reason is not null then 0
            when on_demand.spend_cap_minor is null then on_demand.on_demand_quantity
            else least(on_demand.on_demand_quantity, coalesce(affordable.affordable_quantity, 0))
        end as billed_quantity
    from on_demand
    left join affordable
        on on_demand.rating_key = affordable.rating_key
),

tier_amounts as (
    select
        billed.rating_key,
        cast(
            case
                when billed.pricing_model in ('per_unit', 'graduated')
                    then
                        greatest(
                            0,
                            least(billed.billed_quantity, coalesce(tiers.tier_end, billed.billed_quantity))
                            - tiers.tier_start
                        ) * tiers.unit_price_decimal
                when billed.pricing_model = 'volume'
                    then
                        case
                            when
                                billed.billed_quantity > 0
                                and billed.billed_quantity >= tiers.tier_start
                                and (tiers.tier_end is null or billed.billed_quantity < tiers.tier_end)
                                then billed.billed_quantity * tiers.unit_price_decimal
                            else 0
                        end
                when billed.pricing_model = 'package' then
                    {{ floor_div('billed.billed_quantity + billed.package_size - 1', 'billed.package_size') }}
                    * tiers.unit_price_decimal
            end
            as {{ money_type() }}
        ) as tier_amount_decimal,
        case
            when billed.pricing_model = 'volume' and billed.billed_quantity > 0
                and billed.billed_quantity >= tiers.tier_start
                and (tiers.tier_end is null or billed.billed_quantity < tiers.tier_end)
                then 1
            else 0
        end as volume_tier_hit
    from billed
    inner join tiers
        on
            billed.subscription_period_key = tiers.subscription_period_key
            and billed.category = tiers.category
    where billed.unpriced_reason is null
),

amounts as (
    select
        rating_key,
        cast(sum(tier_amount_decimal) as {{ money_type() }}) as amount_decimal,
        sum(volume_tier_hit) as volume_tiers_hit
    from tier_amounts
    group by rating_key
),

classified as (
    select
        billed.*,
        coalesce(amounts.amount_decimal, 0) as tier_amount_sum,
        case
            when billed.unpriced_reason is null
                and billed.pricing_model = 'volume'
                and billed.billed_quantity > 0
                and coalesce(amounts.volume_tiers_hit, 0) = 0
                then 'quantity_outside_tiers'
            else billed.unpriced_reason
        end as final_unpriced_reason
    from billed
    left join amounts
        on billed.rating_key = amounts.rating_key
),

-- an unpriced row bills nothing, whatever made it unpriced (also a volume quantity found outside
-- the tiers only here): no allowance, no reserved volume, no amount (docs/pricing.md rule 8)
rated as (
    select
        classified.*,
        case when classified.final_unpriced_reason is null then classified.included_prorated else 0 end
            as final_included_quantity,
        case when classified.final_unpriced_reason is null then classified.reserved_prorated else 0 end
            as final_reserved_quantity,
        cast(
            case when classified.final_unpriced_reason is null then classified.tier_amount_sum else 0 end
            as {{ money_type() }}
        ) as amount_decimal,
        cast(
            case when classified.final_unpriced_reason is null
                    then classified.reserved_prorated * coalesce(classified.reserved_unit_price_decimal, 0)
                else 0
            end
            as {{ money_type() }}
        ) as reserved_amount_decimal
    from classified
)

select
    rating_key,
    account_id,
    category,
    period,
    period_start,
    period_end,
    subscription_id,
    subscription_period_key,
    plan_id,
    currency,
    coalesce(rounding_mode, 'half_even') as rounding_mode,
    pricing_model,
    final_unpriced_reason as unpriced_reason,
    final_unpriced_reason is null as is_priced,
    metered_quantity,
    spike_quantity,
    held_quantity,
    rated_quantity,
    final_included_quantity as included_quantity,
    final_reserved_quantity as reserved_quantity,
    on_demand_quantity,
    case when final_unpriced_reason is null then billed_quantity else 0 end as billed_quantity,
    case when final_unpriced_reason is null then on_demand_quantity - billed_quantity else 0 end
        as over_budget_quantity,
    amount_decimal,
    reserved_amount_decimal,
    -- no minor-unit factor only on unpriced rows (unknown currency), whose amounts are 0: 0, not NULL
    {{ round_minor('amount_decimal * coalesce(minor_unit_factor, 0)', "coalesce(rounding_mode, 'half_even')") }}
        as amount_minor,
    {{ round_minor(
        'reserved_amount_decimal * coalesce(minor_unit_factor, 0)', "coalesce(rounding_mode, 'half_even')"
    ) }} as reserved_amount_minor
from rated
