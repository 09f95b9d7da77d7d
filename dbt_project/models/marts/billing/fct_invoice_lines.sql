-- One row per account, billing period and invoice line: a base_fee line for every account
-- with a subscription active at period start, plus one line per category with metered
-- accepted usage > 0 in the period (0-amount lines are kept).
with

account_periods as (
    select * from {{ ref('int_account_periods_resolved') }}
),

rated as (
    select * from {{ ref('int_usage_rated') }}
),

locks as (
    select * from {{ ref('stg_ledger__period_locks') }}
),

base_fee_lines as (
    select
        account_id,
        period,
        period_start,
        period_end,
        currency,
        plan_id,
        'base_fee' as category,
        'base_fee' as line_type,
        cast(1 as {{ dbt.type_bigint() }}) as quantity,
        base_fee_minor as amount_minor
    from account_periods
),

usage_lines as (
    select
        rated.account_id,
        rated.period,
        rated.period_start,
        rated.period_end,
        account_periods.currency,
        account_periods.plan_id,
        rated.category,
        'usage' as line_type,
        rated.metered_quantity as quantity,
        rated.amount_minor
    from rated
    inner join account_periods
        on
            rated.account_id = account_periods.account_id
            and rated.period = account_periods.period
    where rated.metered_quantity > 0
),

lines as (
    select * from base_fee_lines
    union all
    select * from usage_lines
),

keyed as (
    select
        {{ dbt.concat(["'inv_'", "lines.account_id", "'_'", "lines.period"]) }} as invoice_id,
        lines.*,
        locks.period is not null as is_period_locked
    from lines
    left join locks
        on lines.period = locks.period
)

select
    {{ dbt.concat(["invoice_id", "':'", "category"]) }} as invoice_line_id,
    invoice_id,
    account_id,
    period,
    period_start,
    period_end,
    category,
    line_type,
    currency,
    plan_id,
    quantity,
    amount_minor,
    is_period_locked,
    case when is_period_locked then 'issued' else 'draft' end as state
from keyed
