-- The truth of the metering store: the latest valid version of each natural key.
with

validated as (
    select * from {{ ref('int_metering_usage_validated') }}
)

select
    {{ dbt.concat([
        dbt.cast('hour_start', dbt.type_string()), "'|'", "account_id", "'|'", "coalesce(project_id, '')", "'|'", "category", "'|'", "outcome"
    ]) }} as usage_key,
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
