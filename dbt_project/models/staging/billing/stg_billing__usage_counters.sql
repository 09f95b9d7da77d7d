with

source as (
    select * from {{ source('raw', 'billing_usage_counters') }}
),

renamed as (
    select
        cast(day as date) as usage_day,
        account_id,
        category,
        cast(quantity as {{ dbt.type_bigint() }}) as quantity,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
