with

source as (
    select * from {{ source('raw', 'stripe_invoices') }}
),

renamed as (
    select
        id as invoice_id,
        customer_id,
        account_id,
        period,
        upper(currency) as currency,
        status as invoice_status,
        {{ stripe_minor('subtotal') }} as subtotal_minor,
        {{ stripe_minor('total') }} as total_minor,
        {{ stripe_minor('amount_paid') }} as amount_paid_minor,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
