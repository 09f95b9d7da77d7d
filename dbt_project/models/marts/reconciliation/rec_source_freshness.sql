-- Freshness per source, in data time: how far the newest data of each source lags as_of.
--   metering  the end of the newest hour of usage
--   billing   the end of the newest day of usage counters
--   stripe    the end of the newest loaded extraction interval (Stripe is quiet for days at a time
--             - invoices and charges come monthly - so its freshness is the extraction's)
-- A lag beyond freshness_max_hours ([reconcile] in meterline.toml) is missing_in_<source>.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

newest as (
    select
        'metering' as source_name,
        {{ dbt.dateadd('hour', 1, 'max(hour_start)') }} as newest_data_at
    from {{ ref('int_metering_usage_current') }}
    union all
    select
        'billing' as source_name,
        {{ dbt.dateadd('day', 1, 'max(usage_day)') }} as newest_data_at
    from {{ ref('int_billing_usage_counters_latest') }}
    union all
    select
        'stripe' as source_name,
        max(interval_end) as newest_data_at
    from {{ ref('stg_ledger__batches') }}
    where batch_source in ('stripe', 'stripe_resync') and status = 'loaded'
),

lagged as (
    select
        newest.source_name,
        cast(newest.newest_data_at as {{ dbt.type_timestamp() }}) as newest_data_at,
        as_of.as_of,
        {{ dbt.datediff('newest.newest_data_at', 'as_of.as_of', 'hour') }} as lag_hours  -- noqa: LT05
    from newest
    cross join as_of
)

select
    source_name,
    newest_data_at,
    as_of,
    lag_hours,
    {{ var('freshness_max_hours') }} as max_lag_hours,
    case
        when newest_data_at is null or lag_hours > {{ var('freshness_max_hours') }}
            then {{ dbt.concat(["'missing_in_'", "source_name"]) }}
        else 'matched'
    end as status
from lagged
