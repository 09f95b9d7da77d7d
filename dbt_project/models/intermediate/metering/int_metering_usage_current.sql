-- The truth of the metering store: the latest valid version of each natural key. On DuckDB a
-- view (a columnar scan of the incremental int_metering_usage_validated costs less than
-- writing its rows again every night); on PostgreSQL a table, read by five models.
{{ config(materialized=('view' if target.type == 'duckdb' else 'table')) }}
with

validated as (
    select * from {{ ref('int_metering_usage_validated') }}
)

select
    hour_start,
    cast(hour_start as date) as usage_day,
    account_id,
    project_id,
    category,
    outcome,
    quantity,
    updated_at,
    _batch_id
from validated
where is_current_version
