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

at_ingest as (
    select
        *,
        row_number() over (
            partition by _batch_id, raw_table, reason, row_json
            order by _extracted_at
        ) as copy_number
    from {{ ref('stg_ledger__quarantined_rows') }}
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
