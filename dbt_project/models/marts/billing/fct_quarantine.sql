-- One row per quarantined raw row, with its reason code. Quarantined rows are never billed.
with

validated as (
    select * from {{ ref('int_metering_usage_validated') }}
    where not is_valid
)

select
    {{ dbt.concat([
        "_batch_id", "'|'", dbt.cast('hour_start', dbt.type_string()), "'|'", "coalesce(account_id, '')",
        "'|'", "coalesce(project_id, '')", "'|'", "coalesce(category, '')", "'|'", "coalesce(outcome, '')",
        "'|'", dbt.cast('updated_at', dbt.type_string()), "'#'", dbt.cast('copy_number', dbt.type_string())
    ]) }} as quarantine_id,
    'metering' as source,
    quarantine_reason as reason,
    account_id,
    project_id,
    category,
    outcome,
    hour_start,
    cast(hour_start as date) as day,
    quantity,
    updated_at,
    _batch_id
from validated
