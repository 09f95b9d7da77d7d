with

source as (
    select * from {{ source('raw', 'stripe_credit_notes') }}
),

renamed as (
    select
        id as credit_note_id,
        invoice_id,
        customer_id,
        {{ stripe_minor('amount') }} as amount_minor,
        upper(currency) as currency,
        status as credit_note_status,
        type as credit_note_type,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
