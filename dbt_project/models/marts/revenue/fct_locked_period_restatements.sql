-- "As closed vs as known now": for each locked accounting period, account, currency and product,
-- the revenue frozen at its close (plus catch-ups for it already frozen in later locked periods)
-- and the revenue as computed from what is known now. A
-- non-zero difference has been (or, with no open period after it yet, will be) booked as catch-up
-- revenue and a catch-up journal entry in the first open period after it.
with

locks as (
    select * from {{ ref('int_accounting_locks') }}
),

frozen as (
    select
        case
            when is_catchup then service_period
            else {{ accounting_lock_period('accounting_period') }}
        end as accounting_period,
        account_id,
        currency,
        product,
        revenue_minor
    from {{ ref('stg_ledger__locked_revenue_daily') }}
),

as_closed as (
    select
        accounting_period,
        account_id,
        currency,
        product,
        sum(revenue_minor) as revenue_minor
    from frozen
    group by accounting_period, account_id, currency, product
),

computed as (
    select
        {{ accounting_lock_period('accounting_period') }} as accounting_period,
        account_id,
        currency,
        product,
        revenue_minor
    from {{ ref('int_revenue_daily_computed') }}
),

as_known_now as (
    select
        computed.accounting_period,
        computed.account_id,
        computed.currency,
        computed.product,
        sum(computed.revenue_minor) as revenue_minor
    from computed
    inner join locks
        on computed.accounting_period = locks.period
    group by computed.accounting_period, computed.account_id, computed.currency, computed.product
),

joined as (
    select
        coalesce(as_closed.accounting_period, as_known_now.accounting_period) as locked_period,
        coalesce(as_closed.account_id, as_known_now.account_id) as account_id,
        coalesce(as_closed.currency, as_known_now.currency) as currency,
        coalesce(as_closed.product, as_known_now.product) as product,
        coalesce(as_closed.revenue_minor, 0) as as_closed_minor,
        coalesce(as_known_now.revenue_minor, 0) as as_known_now_minor
    from as_closed
    full outer join as_known_now
        on
            as_closed.accounting_period = as_known_now.accounting_period
            and as_closed.account_id = as_known_now.account_id
            and as_closed.currency = as_known_now.currency
            and as_closed.product = as_known_now.product
)

select
    {{ dbt.concat(["locked_period", "'|'", "account_id", "'|'", "currency", "'|'", "product"]) }} as restatement_key,
    locked_period,
    account_id,
    currency,
    product,
    cast(as_closed_minor as {{ dbt.type_bigint() }}) as as_closed_minor,
    cast(as_known_now_minor as {{ dbt.type_bigint() }}) as as_known_now_minor,
    cast(as_known_now_minor - as_closed_minor as {{ dbt.type_bigint() }}) as difference_minor
from joined
