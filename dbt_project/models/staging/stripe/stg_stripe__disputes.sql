with

source as (
    select * from {{ source('raw', 'stripe_disputes') }}
),

renamed as (
    select
        id as dispute_id,
        charge_id,
        {{ stripe_minor('amount') }} as amount_minor,
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
