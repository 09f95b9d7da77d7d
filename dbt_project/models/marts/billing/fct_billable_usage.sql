-- One row per account, data category and billing period with metered accepted usage.
with

rated as (
    select * from {{ ref('int_usage_rated') }}
)

select
    usage_period_key as billable_usage_id,
    account_id,
    category,
    period,
    period_start,
    period_end,
    currency,
    plan_id,
    is_priced,
    metered_quantity,
    included_quantity,
    billable_quantity,
    amount_decimal,
    amount_minor
from rated
