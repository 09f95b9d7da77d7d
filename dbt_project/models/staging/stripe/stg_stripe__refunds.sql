with

source as (
    select * from {{ source('raw', 'stripe_refunds') }}
),

renamed as (
    select
        id as refund_id,
        charge_id,
        {{ stripe_minor('amount') }} as amount_minor,
        upper(currency) as currency,
        status as refund_status,
        balance_transaction_id,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
