with

source as (
    select * from {{ source('raw', 'metering_usage_hourly') }}
),

renamed as (
    select
        cast(hour_start as {{ dbt.type_timestamp() }}) as hour_start,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(project_id as {{ dbt.type_string() }}) as project_id,
        cast(category as {{ dbt.type_string() }}) as category,
        cast(outcome as {{ dbt.type_string() }}) as outcome,
        cast(quantity as {{ dbt.type_bigint() }}) as quantity,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
