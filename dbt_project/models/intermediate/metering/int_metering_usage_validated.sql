-- Every raw metering row, with the reason it is quarantined (or NULL) and whether it is the
-- current version of its natural key among the valid rows (macro metering_validated_rows).
-- Incremental by hour: a run rebuilds the hours int_metering_usage_changed_hours lists, from
-- all of their raw rows, in build slices of at most about var('metering_slice_rows') raw rows:
-- this statement builds the first slice, the post-hook inserts the others
-- (macros/metering_incremental.sql). The result equals a full rebuild in one statement.
-- depends_on: {{ ref('int_metering_usage_changed_hours') }}
-- depends_on: {{ ref('stg_metering__usage_hourly') }}
-- depends_on: {{ ref('stg_ledger__batches') }}
-- depends_on: {{ ref('int_billing_accounts_snapshot') }}
-- depends_on: {{ ref('categories') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ delete_rebuilt_metering_hours() }}",
    post_hook="{{ insert_remaining_metering_slices() }}"
) }}
{%- set slices = metering_build_slices() %}
{{ metering_validated_rows(slices[0] if slices else none, metering_code_version()) }}
