with

source as (
    select * from {{ source('raw', 'stripe_charges') }}
),

renamed as (
    select
        id as charge_id,
        customer_id,
        invoice_id,
        {{ stripe_minor('amount') }} as amount_minor,
        {{ stripe_minor('amount_refunded') }} as amount_refunded_minor,
        upper(currency) as currency,
        status as charge_status,
        balance_transaction_id,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
