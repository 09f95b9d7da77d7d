-- Recognized revenue per account, currency, product, day, service period and source
-- (invoice_lines, credit_breakage, refund, credit_note; catch-up rows are flagged). Locked
-- accounting periods show what was frozen at their close (ledger.locked_revenue_daily); what is
-- known now about a locked period but differs is recognized as catch-up revenue on the first day
-- of the first open period after it, attributed to the locked period as its service period.
with

computed as (
    select * from {{ ref('int_revenue_daily_computed') }}
),

locks as (
    select * from {{ ref('int_accounting_locks') }}
),

targets as (
    select * from {{ ref('int_accounting_catchup_targets') }}
),

locked as (
    select * from {{ ref('stg_ledger__locked_revenue_daily') }}
),

open_rows as (
    select
        computed.account_id,
        computed.currency,
        computed.product,
        computed.revenue_date,
        computed.accounting_period,
        computed.service_period,
        computed.revenue_source,
        computed.revenue_minor,
        false as is_catchup
    from computed
    left join locks
        on {{ accounting_lock_period('computed.accounting_period') }} = locks.period
    where locks.period is null
),

differences as (
    select
        accounting_period as locked_period,
        account_id,
        currency,
        product,
        revenue_source,
        sum(revenue_minor) as revenue_minor
    from (
        select
            {{ accounting_lock_period('computed.accounting_period') }} as accounting_period,
            computed.account_id,
            computed.currency,
            computed.product,
            computed.revenue_source,
            computed.revenue_minor
        from computed
        inner join locks
            on {{ accounting_lock_period('computed.accounting_period') }} = locks.period
        union all
        -- what is frozen about a locked period: its own rows, and the catch-ups for it that
        -- later locked periods already booked
        select
            case
                when is_catchup then service_period
                else {{ accounting_lock_period('accounting_period') }}
            end as accounting_period,
            account_id,
            currency,
            product,
            revenue_source,
            -revenue_minor as revenue_minor
        from locked
    ) as both_sides
    group by accounting_period, account_id, currency, product, revenue_source
    having sum(revenue_minor) <> 0
),

catchup_rows as (
    select
        differences.account_id,
        differences.currency,
        differences.product,
        targets.target_start as revenue_date,
        targets.target_period as accounting_period,
        differences.locked_period as service_period,
        differences.revenue_source,
        differences.revenue_minor,
        true as is_catchup
    from differences
    inner join targets
        on differences.locked_period = targets.locked_period
)

select
    account_id,
    currency,
    product,
    revenue_date,
    accounting_period,
    service_period,
    revenue_source,
    cast(revenue_minor as {{ dbt.type_bigint() }}) as revenue_minor,
    is_catchup
from open_rows
union all
select
    account_id,
    currency,
    product,
    revenue_date,
    accounting_period,
    service_period,
    revenue_source,
    revenue_minor,
    is_catchup
from locked
union all
select
    account_id,
    currency,
    product,
    revenue_date,
    accounting_period,
    service_period,
    revenue_source,
    cast(revenue_minor as {{ dbt.type_bigint() }}) as revenue_minor,
    is_catchup
from catchup_rows
