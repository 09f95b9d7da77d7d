-- Completeness per source and hour: for every hour of the last completeness_days days before
-- as_of (never before the ingested history begins), how many loaded batches of each source
-- (metering, billing, stripe) cover it, and how many metering rows it holds. An hour no loaded
-- batch of a source covers was never extracted from it: missing_in_<source>.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

batches as (
    -- a Stripe resync is a Stripe batch like the nightly ones
    select
        batch_id,
        case when batch_source = 'stripe_resync' then 'stripe' else batch_source end as batch_source,
        interval_start,
        interval_end
    from {{ ref('stg_ledger__batches') }}
    where status = 'loaded'
),

numbers as (
    {{ dbt.generate_series(var('completeness_days') * 24) }}
),

hours as (
    select
        {{ dbt.dateadd('hour', '-1 * cast(numbers.generated_number as ' ~ dbt.type_bigint() ~ ')', 'as_of.as_of') }}
            as hour_start
    from numbers
    cross join as_of
),

in_history as (
    select hours.hour_start
    from hours
    cross join as_of
    where hours.hour_start >= as_of.first_interval_start
),

sources as (
    select 'metering' as source_name
    union all
    select 'billing' as source_name
    union all
    select 'stripe' as source_name
),

coverage as (
    select
        sources.source_name,
        in_history.hour_start,
        count(batches.batch_id) as covering_batches
    from sources
    cross join in_history
    left join batches
        on
            sources.source_name = batches.batch_source
            and in_history.hour_start >= batches.interval_start
            and in_history.hour_start < batches.interval_end
    group by sources.source_name, in_history.hour_start
),

metering_rows as (
    select
        hour_start,
        count(*) as metering_rows
    from {{ ref('int_metering_usage_current') }}
    group by hour_start
)

select
    {{ dbt.concat(["coverage.source_name", "'|'", as_text('coverage.hour_start')]) }} as completeness_id,
    coverage.source_name,
    coverage.hour_start,
    cast(coverage.hour_start as date) as day,
    coverage.covering_batches,
    case when coverage.source_name = 'metering' then coalesce(metering_rows.metering_rows, 0) end as metering_rows,
    case
        when coverage.covering_batches > 0 then 'matched'
        else {{ dbt.concat(["'missing_in_'", "coverage.source_name"]) }}
    end as status
from coverage
left join metering_rows
    on coverage.hour_start = metering_rows.hour_start
