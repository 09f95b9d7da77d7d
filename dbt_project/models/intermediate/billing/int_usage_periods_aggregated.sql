-- Usage per account, category and billing period: the sum of the latest valid `accepted`
-- quantities over the hours in [period_start, period_end).
with

usage_current as (
    select * from {{ ref('int_metering_usage_current') }}
    where outcome = 'accepted'
),

periods as (
    select * from {{ ref('int_billing_periods') }}
)

select
    {{ dbt.concat(["usage_current.account_id", "'|'", "usage_current.category", "'|'", "periods.period"]) }}
        as usage_period_key,
    usage_current.account_id,
    usage_current.category,
    periods.period,
    periods.period_start,
    periods.period_end,
    sum(usage_current.quantity) as metered_quantity
from usage_current
inner join periods
    on
        usage_current.hour_start >= periods.period_start
        and usage_current.hour_start < periods.period_end
group by
    usage_current.account_id,
    usage_current.category,
    periods.period,
    periods.period_start,
    periods.period_end
