-- noqa: disable=RF03,RF04,LT05
-- Accepted usage per account, category and UTC day (latest version of every hour), with spike
-- protection applied. Where the price set of the subscription covering the day has a
-- spike_multiplier N and the series has a full trailing baseline (it has existed for the
-- spike_baseline_days days before the day), the usage allowed that day is
--     allowed = floor(N * baseline_sum / spike_baseline_days)
-- (N times the trailing daily average, in whole units), and the rest is held: not billed until a
-- reviewer releases the day (billing spike_releases). Days without usage count as 0 in the
-- baseline.
with

usage_current as (
    select * from {{ ref('int_metering_usage_current') }}
    where outcome = 'accepted'
),

segments as (
    select * from {{ ref('int_subscription_periods') }}
),

prices as (
    select * from {{ ref('int_prices_resolved') }}
    where price_invalid_reason is null
),

releases as (
    select * from {{ ref('int_billing_spike_releases_snapshot') }}
),

days as (
    select
        account_id,
        category,
        usage_day,
        sum(quantity) as quantity
    from usage_current
    group by account_id, category, usage_day
),

numbered as (
    select
        days.*,
        {{ dbt.datediff("cast('1970-01-01' as date)", 'days.usage_day', 'day') }} as day_number
    from days
),

baselines as (
    select
        numbered.*,
        coalesce(sum(quantity) over (
            partition by account_id, category
            order by day_number
            range between {{ var('spike_baseline_days') }} preceding and 1 preceding
        ), 0) as baseline_sum,
        min(day_number) over (partition by account_id, category) as first_day_number
    from numbered
),

multipliers as (
    select
        segments.account_id,
        prices.category,
        segments.segment_start,
        segments.segment_end,
        max(prices.spike_multiplier) as spike_multiplier
    from segments
    inner join prices
        on segments.subscription_period_key = prices.subscription_period_key
    group by segments.account_id, prices.category, segments.segment_start, segments.segment_end
),

protected as (
    select
        baselines.account_id,
        baselines.category,
        baselines.usage_day,
        baselines.quantity,
        baselines.baseline_sum,
        multipliers.spike_multiplier,
        case
            when
                multipliers.spike_multiplier is not null
                and baselines.first_day_number <= baselines.day_number - {{ var('spike_baseline_days') }}
                then {{ floor_div('multipliers.spike_multiplier * baselines.baseline_sum', var('spike_baseline_days')) }}
        end as allowed_quantity
    from baselines
    left join multipliers
        on
            baselines.account_id = multipliers.account_id
            and baselines.category = multipliers.category
            and baselines.usage_day >= multipliers.segment_start
            and baselines.usage_day < multipliers.segment_end
)

select
    {{ dbt.concat(["protected.account_id", "'|'", "protected.category", "'|'", format_day('protected.usage_day')]) }}
        as usage_day_key,
    protected.account_id,
    protected.category,
    protected.usage_day,
    protected.quantity,
    protected.baseline_sum,
    protected.spike_multiplier,
    protected.allowed_quantity,
    case
        when protected.allowed_quantity is not null and protected.quantity > protected.allowed_quantity
            then protected.quantity - protected.allowed_quantity
        else 0
    end as spike_quantity,
    releases.usage_day is not null as is_released,
    case
        when releases.usage_day is null
            and protected.allowed_quantity is not null
            and protected.quantity > protected.allowed_quantity
            then protected.quantity - protected.allowed_quantity
        else 0
    end as held_quantity
from protected
left join releases
    on
        protected.account_id = releases.account_id
        and protected.category = releases.category
        and protected.usage_day = releases.usage_day
