-- fct_billable_usage.metered_quantity is exactly the latest valid `accepted` metering usage
-- inside the billing periods: per account and category, and in total. Returns the rows that
-- disagree.
with

periods as (
    select
        min(period_start) as first_start,
        max(period_end) as last_end
    from {{ ref('int_billing_periods') }}
),

billed as (
    select
        account_id,
        category,
        sum(metered_quantity) as quantity
    from {{ ref('fct_billable_usage') }}
    group by account_id, category
),

metered as (
    select
        metering_usage.account_id,
        metering_usage.category,
        sum(metering_usage.quantity) as quantity
    from {{ ref('int_metering_usage_validated') }} as metering_usage
    cross join periods
    where
        metering_usage.hour_start >= periods.first_start
        and metering_usage.hour_start < periods.last_end
        and metering_usage.is_current_version
        and metering_usage.is_valid
        and metering_usage.outcome = 'accepted'
    group by metering_usage.account_id, metering_usage.category
)

select
    coalesce(billed.account_id, metered.account_id) as account_id,
    coalesce(billed.category, metered.category) as category,
    billed.quantity as billed_quantity,
    metered.quantity as metered_quantity
from billed
full outer join metered
    on
        billed.account_id = metered.account_id
        and billed.category = metered.category
where
    billed.quantity is null
    or metered.quantity is null
    or billed.quantity <> metered.quantity
