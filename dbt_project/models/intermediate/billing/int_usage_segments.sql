-- Usage per account, category, billing period and the subscription that covers it: the days of
-- int_usage_days inside [period_start, period_end), split by subscription segment. Days no
-- subscription covers keep a row with a NULL subscription (usage that no invoice bills, kept so
-- every accepted unit stays accounted for).
with

usage_days as (
    select * from {{ ref('int_usage_days') }}
),

periods as (
    select * from {{ ref('int_billing_periods') }}
),

segments as (
    select * from {{ ref('int_subscription_periods') }}
),

placed as (
    select
        usage_days.account_id,
        usage_days.category,
        periods.period,
        periods.period_start,
        periods.period_end,
        segments.subscription_id,
        segments.subscription_period_key,
        usage_days.quantity,
        usage_days.spike_quantity,
        usage_days.held_quantity
    from usage_days
    inner join periods
        on
            usage_days.usage_day >= periods.period_start
            and usage_days.usage_day < periods.period_end
    left join segments
        on
            usage_days.account_id = segments.account_id
            and usage_days.usage_day >= segments.segment_start
            and usage_days.usage_day < segments.segment_end
)

select
    {{ dbt.concat(["account_id", "'|'", "category", "'|'", "period", "'|'", "coalesce(subscription_id, '')"]) }}
        as usage_segment_key,
    account_id,
    category,
    period,
    period_start,
    period_end,
    subscription_id,
    subscription_period_key,
    sum(quantity) as metered_quantity,
    sum(spike_quantity) as spike_quantity,
    sum(held_quantity) as held_quantity
from placed
group by
    account_id,
    category,
    period,
    period_start,
    period_end,
    subscription_id,
    subscription_period_key
