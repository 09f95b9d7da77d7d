-- Payment events (fin_payment_events) summed per currency and event type, in two scopes:
--   scope 'month'    events created in scope_period ('YYYY-MM'): count and amount, and how many
--                    of them are still open
--   scope 'at_risk'  everything at risk now (scope_period NULL): count and amount
with

events as (
    select * from {{ ref('fin_payment_events') }}
),

summed as (
    select
        'month' as scope,
        event_period as scope_period,
        currency,
        event_type,
        count(*) as event_count,
        sum(amount_minor) as amount_minor,
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
        sum(amount_minor) as amount_minor,
        count(*) as open_count
    from events
    where is_at_risk
    group by currency, event_type
)

select
    {{ dbt.concat(['scope', "'|'", "coalesce(scope_period, '')", "'|'", 'currency', "'|'", 'event_type']) }}
        as summary_key,
    scope,
    scope_period,
    currency,
    event_type,
    cast(event_count as {{ dbt.type_bigint() }}) as event_count,
    cast(amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
    cast(open_count as {{ dbt.type_bigint() }}) as open_count
from summed
