with

source as (
    select * from {{ source('raw', 'stripe_disputes') }}
),

renamed as (
    select
        id as dispute_id,
        charge_id,
        cast(amount as {{ dbt.type_bigint() }}) as amount_minor,
        upper(currency) as currency,
        status as dispute_status,
        reason as dispute_reason,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
