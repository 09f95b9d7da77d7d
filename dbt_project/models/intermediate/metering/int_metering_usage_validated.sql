-- Every raw metering row, with the reason it is quarantined (or NULL) and whether it is the
-- current version of its natural key among the valid rows. Incremental by hour: a run rebuilds
-- the hours int_metering_usage_changed_hours lists, from all of their raw rows
-- (macros/metering_incremental.sql); the result equals a full rebuild.
-- depends_on: {{ ref('int_metering_usage_changed_hours') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ delete_rebuilt_metering_hours() }}"
) }}
with

usage_rows as (
    select * from {{ ref('stg_metering__usage_hourly') }}
    {% if is_incremental() -%}
    where {{ metering_partition_hour('hour_start') }} in (
        select partition_hour from {{ ref('int_metering_usage_changed_hours') }}
    )
    {%- endif %}
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

numbered as (
    select
        usage_rows.*,
        batches.interval_end as batch_interval_end,
        -- copies identical on natural key and updated_at inside one batch: keep the first
        row_number() over (
            partition by
                usage_rows._batch_id,
                usage_rows.hour_start,
                usage_rows.account_id,
                usage_rows.project_id,
                usage_rows.category,
                usage_rows.outcome,
                usage_rows.updated_at
            order by usage_rows.quantity asc, usage_rows._extracted_at asc
        ) as copy_number
    from usage_rows
    left join batches
        on usage_rows._batch_id = batches.batch_id
),

reasoned as (
    select
        numbered.*,
        coalesce(
            {{ metering_row_reason('numbered', 'accounts', 'categories') }},
            case when numbered.copy_number > 1 then 'duplicate_key' end
        ) as quarantine_reason
    from numbered
    left join accounts
        on numbered.account_id = accounts.account_id
    left join categories
        on numbered.category = categories.category
),

versioned as (
    select
        reasoned.*,
        row_number() over (
            partition by
                reasoned.quarantine_reason is null,
                reasoned.hour_start,
                reasoned.account_id,
                reasoned.project_id,
                reasoned.category,
                reasoned.outcome
            order by
                reasoned.updated_at desc,
                coalesce(reasoned.batch_interval_end, reasoned._extracted_at) desc,
                reasoned._batch_id desc,
                reasoned.quantity desc
        ) as version_rank
    from reasoned
)

select
    hour_start,
    account_id,
    project_id,
    category,
    outcome,
    quantity,
    updated_at,
    _batch_id,
    _extracted_at,
    batch_interval_end,
    copy_number,
    quarantine_reason,
    quarantine_reason is null as is_valid,
    quarantine_reason is null and version_rank = 1 as is_current_version,
    {{ metering_code_version() }} as _code_version
from versioned
