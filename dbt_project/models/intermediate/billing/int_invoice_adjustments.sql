-- Late data and retroactive price changes for issued periods. An issued invoice is never
-- rewritten: for every locked service period, each line as computed now is compared with what
-- the issued invoices (not voided) have billed for it so far (the original line plus any
-- earlier adjustments, credits excluded). A difference becomes one adjustment line, exact to the
-- minor unit, on the next draft invoice of the account: the first unlocked period after the
-- service period. Until that period exists the adjustment waits (target_period NULL).
--   adjustment_reason: unbilled (a line no issued invoice billed), no_longer_billed (billed, but
--   not computed any more), usage_restated (the quantity changed: late usage) or repriced (same
--   quantity, another amount: a retroactive price change).
with

locks as (
    select * from {{ ref('stg_ledger__period_locks') }}
),

periods as (
    select * from {{ ref('int_billing_periods') }}
),

issued_invoices as (
    select * from {{ ref('stg_ledger__issued_invoices') }}
    where voided_at is null
),

issued_lines as (
    select issued_lines.*
    from {{ ref('stg_ledger__issued_invoice_lines') }} as issued_lines
    inner join issued_invoices
        on issued_lines.invoice_id = issued_invoices.invoice_id
    where issued_lines.line_type <> 'credit'
),

billed as (
    select
        account_id,
        service_period,
        line_key,
        max(category) as category,
        max(currency) as currency,
        sum(quantity) as quantity,
        sum(amount_minor) as amount_minor
    from issued_lines
    group by account_id, service_period, line_key
),

current_locked as (
    select current_lines.*
    from {{ ref('int_invoice_lines_current') }} as current_lines
    inner join locks
        on current_lines.period = locks.period
),

deltas as (
    select
        coalesce(current_locked.account_id, billed.account_id) as account_id,
        coalesce(current_locked.period, billed.service_period) as service_period,
        coalesce(current_locked.line_key, billed.line_key) as line_key,
        coalesce(current_locked.category, billed.category) as category,
        coalesce(current_locked.currency, billed.currency) as currency,
        coalesce(current_locked.quantity, 0) - coalesce(billed.quantity, 0) as quantity,
        coalesce(current_locked.amount_minor, 0) - coalesce(billed.amount_minor, 0) as amount_minor,
        case
            when billed.line_key is null then 'unbilled'
            when current_locked.line_key is null then 'no_longer_billed'
            when coalesce(current_locked.quantity, 0) <> coalesce(billed.quantity, 0) then 'usage_restated'
            else 'repriced'
        end as adjustment_reason
    from current_locked
    full outer join billed
        on
            current_locked.account_id = billed.account_id
            and current_locked.period = billed.service_period
            and current_locked.line_key = billed.line_key
),

open_periods as (
    select periods.period
    from periods
    left join locks
        on periods.period = locks.period
    where locks.period is null
),

targeted as (
    select
        deltas.account_id,
        deltas.service_period,
        deltas.line_key,
        min(open_periods.period) as target_period
    from deltas
    left join open_periods
        on deltas.service_period < open_periods.period
    where deltas.quantity <> 0 or deltas.amount_minor <> 0
    group by deltas.account_id, deltas.service_period, deltas.line_key
)

select
    {{ dbt.concat(["deltas.account_id", "'|'", "deltas.service_period", "'|'", "deltas.line_key"]) }} as adjustment_id,
    deltas.account_id,
    targeted.target_period,
    deltas.service_period,
    deltas.line_key,
    deltas.category,
    deltas.currency,
    deltas.quantity,
    cast(deltas.amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
    deltas.adjustment_reason
from deltas
inner join targeted
    on
        deltas.account_id = targeted.account_id
        and deltas.service_period = targeted.service_period
        and deltas.line_key = targeted.line_key
