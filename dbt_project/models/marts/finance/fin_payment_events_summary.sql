-- Payment events (fin_payment_events) summed per currency and event type, in two scopes:
--   scope 'month'    events created in scope_period ('YYYY-MM'): event_count (every event: every
--                    refund whatever its status, every failed attempt), amount_minor of the
--                    counted ones only (is_counted: succeeded refunds, as the flash's refunded;
--                    each disputed charge once; each Stripe invoice's failed attempts once;
--                    unpaid invoices), counted_count, and how many are still open
--   scope 'at_risk'  everything at risk now (scope_period NULL): unpaid invoices and disputes,
--                    count and at_risk_minor, and event_type 'total' per currency: the money at
--                    risk, each Stripe invoice and each disputed charge once
with

events as (
    select * from {{ ref('fin_payment_events') }}
),

at_risk as (
    select
        currency,
        event_type,
        at_risk_minor
    from events
    where is_at_risk
),

summed as (
    select
        'month' as scope,
        event_period as scope_period,
        currency,
        event_type,
        count(*) as event_count,
        sum(case when is_counted then 1 else 0 end) as counted_count,
        sum(case when is_counted then amount_minor else 0 end) as amount_minor,
        sum(case when is_open then 1 else 0 end) as open_count
    from events
    group by event_period, currency, event_type
    union all
    select
        'at_risk' as scope,
        cast(null as {{ dbt.type_string() }}) as scope_period,
        currency,
        event_type,
        count(*) as event_count,
        count(*) as counted_count,
        sum(at_risk_minor) as amount_minor,
        count(*) as open_count
    from at_risk
    group by currency, event_type
    union all
    select
        'at_risk' as scope,
        cast(null as {{ dbt.type_string() }}) as scope_period,
        currency,
        'total' as event_type,
        count(*) as event_count,
        count(*) as counted_count,
        sum(at_risk_minor) as amount_minor,
        count(*) as open_count
    from at_risk
    group by currency
)

select
    {{ dbt.concat(['scope', "'|'", "coalesce(scope_period, '')", "'|'", 'currency', "'|'", 'event_type']) }}
        as summary_key,
    scope,
    scope_period,
    currency,
    event_type,
    cast(event_count as {{ dbt.type_bigint() }}) as event_count,
    cast(counted_count as {{ dbt.type_bigint() }}) as counted_count,
    cast(amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
    cast(open_count as {{ dbt.type_bigint() }}) as open_count
from summed
