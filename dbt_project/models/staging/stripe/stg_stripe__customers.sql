with

source as (
    select * from {{ source('raw', 'stripe_customers') }}
),

renamed as (
    select
        id as customer_id,
        account_id,
        email,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
