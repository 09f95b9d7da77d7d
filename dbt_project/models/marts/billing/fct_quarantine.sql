-- One row per quarantined row, with its reason code. Quarantined rows are never billed.
-- Two origins: row-level contract violations the loader kept out of raw (raw.quarantine, any
-- source), and metering rows that only fail against another source (unknown_account,
-- unknown_outcome) — plus, as a backstop for raw written by other means, the row-level
-- reasons again (raw loaded by ingest never contains such rows, so nothing counts twice).
with

validated as (
    select * from {{ ref('int_metering_usage_validated') }}
    where not is_valid
),

copies as (
    select
        *,
        row_number() over (
            partition by _batch_id, raw_table, reason, row_json
            order by _extracted_at
        ) as copy_number
    from {{ ref('stg_ledger__quarantined_rows') }}
),

-- A row whose times are both missing or unreadable belongs to no night, so every night pulls it
-- again (ingest/sql_sources.py _night_versions): each copy is listed once, from the earliest
-- night's batch that carried it (a batch id starts with its source and night). Any other
-- quarantined row is pulled by one night only, and a reloaded night's batch leaves raw, so for
-- them this keeps every row.
first_batches as (
    select
        *,
        first_value(_batch_id) over (
            partition by raw_table, reason, row_json, copy_number
            order by _batch_id
            rows between unbounded preceding and unbounded following
        ) as first_batch_id
    from copies
),

at_ingest as (
    select * from first_batches
    where reason <> 'unparsable_timestamp' or _batch_id = first_batch_id
),

in_dbt as (
    select
        {{ dbt.concat([
            "_batch_id", "'|'", dbt.cast('hour_start', dbt.type_string()), "'|'", "coalesce(account_id, '')",
            "'|'", "coalesce(project_id, '')", "'|'", "coalesce(category, '')", "'|'", "coalesce(outcome, '')",
            "'|'", dbt.cast('updated_at', dbt.type_string()), "'#'", dbt.cast('copy_number', dbt.type_string())
        ]) }} as quarantine_id,
        'metering' as source,
        'metering_usage_hourly' as raw_table,
        quarantine_reason as reason,
        account_id,
        project_id,
        category,
        outcome,
        hour_start,
        cast(hour_start as date) as day,
        quantity,
        updated_at,
        cast(null as {{ dbt.type_string() }}) as row_json,
        _batch_id
    from validated
),

from_ingest as (
    select
        {{ dbt.concat([
            "_batch_id", "'|'", "raw_table", "'|'", "reason", "'|'", "row_json",
            "'#'", dbt.cast('copy_number', dbt.type_string())
        ]) }} as quarantine_id,
        _source as source,
        raw_table,
        reason,
        account_id,
        cast(null as {{ dbt.type_string() }}) as project_id,
        category,
        cast(null as {{ dbt.type_string() }}) as outcome,
        cast(null as {{ dbt.type_timestamp() }}) as hour_start,
        day,
        cast(null as {{ dbt.type_bigint() }}) as quantity,
        cast(null as {{ dbt.type_timestamp() }}) as updated_at,
        row_json,
        _batch_id
    from at_ingest
)

select * from in_dbt
union all
select * from from_ingest
