-- One row per account, data category and billing period with accepted usage or reserved
-- volume: the period's quantities summed over its subscription segments (a mid-period plan
-- change rates each segment under its own plan), and the usage amount billed for them.
--   metered     accepted units (latest versions)
--   held        units held by spike protection, not released: not billed
--   included    units free under the included volume (prorated)
--   reserved    units reserved and billed whether used or not (prorated)
--   billable    on-demand units billed; over_budget units beyond the spend cap are not
with

rated as (
    select * from {{ ref('int_usage_rated') }}
)

select
    {{ dbt.concat(["account_id", "'|'", "category", "'|'", "period"]) }} as billable_usage_id,
    account_id,
    category,
    period,
    period_start,
    period_end,
    max(currency) as currency,
    max(plan_id) as plan_id,
    count(distinct subscription_id) as subscription_count,
    min(case when is_priced then 1 else 0 end) = 1 as is_priced,
    max(unpriced_reason) as unpriced_reason,
    sum(metered_quantity) as metered_quantity,
    sum(spike_quantity) as spike_quantity,
    sum(held_quantity) as held_quantity,
    sum(included_quantity) as included_quantity,
    sum(reserved_quantity) as reserved_quantity,
    sum(billed_quantity) as billable_quantity,
    sum(over_budget_quantity) as over_budget_quantity,
    cast(sum(amount_decimal) as {{ money_type() }}) as amount_decimal,
    sum(amount_minor) as amount_minor,
    sum(reserved_amount_minor) as reserved_amount_minor
from rated
group by
    account_id,
    category,
    period,
    period_start,
    period_end
