with

source as (
    select * from {{ source('raw', 'quarantine') }}
),

renamed as (
    select
        cast(raw_table as {{ dbt.type_string() }}) as raw_table,
        cast(reason as {{ dbt.type_string() }}) as reason,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(category as {{ dbt.type_string() }}) as category,
        cast(day as date) as day,
        cast(row_json as {{ dbt.type_string() }}) as row_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
