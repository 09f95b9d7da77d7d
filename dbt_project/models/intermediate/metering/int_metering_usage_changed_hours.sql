-- The hours int_metering_usage_validated rebuilds on this run (macros/metering_incremental.sql):
-- every hour where raw and the table hold a different number of rows of some batch (a new
-- night, a late version, a backfill; a batch that left raw, as a reloaded night's does; rows
-- deleted or added by other means); every hour holding a row whose quarantine reason or batch
-- interval would differ now (the billing accounts snapshot, the categories or the outcomes
-- changed); every hour, when the code that shapes the rows changed or the table predates the
-- fingerprint. On a first or --full-refresh build: every hour in raw.
-- Each hour also carries its raw row count and the build slice it is rebuilt in: hours in
-- order, a new slice each time var('metering_slice_rows') more raw rows have gone before, so
-- a build of hundreds of millions of rows never ranks them all in one statement
-- (macros/metering_incremental.sql).
-- depends_on: {{ ref('stg_ledger__batches') }}
-- depends_on: {{ ref('int_billing_accounts_snapshot') }}
-- depends_on: {{ ref('categories') }}
{{ config(materialized='table') }}
{%- set previous = adapter.get_relation(
    database=this.database, schema=this.schema, identifier='int_metering_usage_validated'
) if execute and not flags.FULL_REFRESH else none %}
{%- set previous_columns = adapter.get_columns_in_relation(previous) | map(attribute='name')
    | map('lower') | list if previous is not none else [] %}
with

usage_rows as (
    select
        _batch_id,
        {{ metering_partition_hour('hour_start') }} as partition_hour
    from {{ ref('stg_metering__usage_hourly') }}
),

{% if previous is none %}

    changed as (
        select partition_hour from usage_rows
    ),

{% elif '_code_version' not in previous_columns %}

    -- a table built before the fingerprint: every hour it or raw holds
    changed as (
        select partition_hour from usage_rows
        union all
        select {{ metering_partition_hour('hour_start') }} as partition_hour
        from {{ previous }}
    ),

{% else %}

previous_rows as (
    select * from {{ previous }}
),

batches as (
    select * from {{ ref('stg_ledger__batches') }}
),

accounts as (
    select * from {{ ref('int_billing_accounts_snapshot') }}
),

categories as (
    select * from {{ ref('categories') }}
),

-- rows per batch and hour, in raw and in the table (a NULL batch id is a batch of its own)
raw_counts as (
    select
        coalesce(_batch_id, '') as batch_key,
        _batch_id is null as batch_is_null,
        partition_hour,
        count(*) as row_count
    from usage_rows
    group by 1, 2, 3
),

table_counts as (
    select
        coalesce(_batch_id, '') as batch_key,
        _batch_id is null as batch_is_null,
        {{ metering_partition_hour('hour_start') }} as partition_hour,
        count(*) as row_count
    from previous_rows
    group by 1, 2, 3
),

recounted as (
    select coalesce(raw_counts.partition_hour, table_counts.partition_hour) as partition_hour
    from raw_counts
    full outer join table_counts
        on
            raw_counts.batch_key = table_counts.batch_key
            and raw_counts.batch_is_null = table_counts.batch_is_null
            and raw_counts.partition_hour = table_counts.partition_hour
    where raw_counts.row_count is distinct from table_counts.row_count
),

restated as (
    select {{ metering_partition_hour('previous_rows.hour_start') }} as partition_hour
    from previous_rows
    left join batches
        on previous_rows._batch_id = batches.batch_id
    left join accounts
        on previous_rows.account_id = accounts.account_id
    left join categories
        on previous_rows.category = categories.category
    where
        {{ metering_row_reason('previous_rows', 'accounts', 'categories') }}
        is distinct from nullif(previous_rows.quarantine_reason, 'duplicate_key')
        or batches.interval_end is distinct from previous_rows.batch_interval_end
        or previous_rows._code_version is distinct from {{ metering_code_version() }}
),

changed as (
    select partition_hour from recounted
    union all
    select partition_hour from restated
),

{% endif %}

hour_rows as (
    select
        partition_hour,
        count(*) as row_count
    from usage_rows
    group by partition_hour
),

sized as (
    select
        changed_hours.partition_hour,
        coalesce(hour_rows.row_count, 0) as row_count,
        coalesce(sum(hour_rows.row_count) over (
            order by changed_hours.partition_hour
            rows between unbounded preceding and 1 preceding
        ), 0) as rows_before
    from (select distinct partition_hour from changed) as changed_hours
    left join hour_rows
        on changed_hours.partition_hour = hour_rows.partition_hour
)

select
    partition_hour,
    row_count,
    cast(
        (rows_before - mod(rows_before, {{ metering_slice_rows() }})) / {{ metering_slice_rows() }}
        as {{ dbt.type_bigint() }}
    ) as build_slice
from sized
