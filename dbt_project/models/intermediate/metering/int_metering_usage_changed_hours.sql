-- The hours int_metering_usage_validated rebuilds on this run (macros/metering_incremental.sql):
-- every hour with a raw row of a batch the table has not seen (a new night, a late version, a
-- backfill); every hour of a batch that left raw (a reloaded night replaces its batch); every
-- hour holding a row whose quarantine reason or batch interval would differ now (the billing
-- accounts snapshot, the categories or the outcomes changed); every hour, when the code that
-- shapes the rows changed. On a first or --full-refresh build: every hour in raw.
-- depends_on: {{ ref('stg_ledger__batches') }}
-- depends_on: {{ ref('int_billing_accounts_snapshot') }}
-- depends_on: {{ ref('categories') }}
{%- set previous = adapter.get_relation(
    database=this.database, schema=this.schema, identifier='int_metering_usage_validated'
) if execute else none %}
{%- set previous_columns = adapter.get_columns_in_relation(previous) | map(attribute='name')
    | map('lower') | list if previous is not none else [] %}
with

usage_rows as (
    select
        _batch_id,
        {{ metering_partition_hour('hour_start') }} as partition_hour
    from {{ ref('stg_metering__usage_hourly') }}
),

{% if previous is none or flags.FULL_REFRESH or '_code_version' not in previous_columns %}

    changed as (
        select partition_hour from usage_rows
    )

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

raw_batches as (
    select distinct _batch_id from usage_rows
),

seen_batches as (
    select distinct _batch_id from previous_rows
),

new_rows as (
    select usage_rows.partition_hour
    from usage_rows
    where not exists (
        select 1 from seen_batches
        where seen_batches._batch_id = usage_rows._batch_id
    )
),

gone_rows as (
    select {{ metering_partition_hour('previous_rows.hour_start') }} as partition_hour
    from previous_rows
    where not exists (
        select 1 from raw_batches
        where raw_batches._batch_id = previous_rows._batch_id
    )
),

restated_rows as (
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
    select partition_hour from new_rows
    union all
    select partition_hour from gone_rows
    union all
    select partition_hour from restated_rows
)

{% endif %}

select distinct partition_hour
from changed
