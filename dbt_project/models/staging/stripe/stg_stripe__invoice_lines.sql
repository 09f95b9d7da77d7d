with

source as (
    select * from {{ source('raw', 'stripe_invoice_lines') }}
),

renamed as (
    select
        id as invoice_line_id,
        invoice_id,
        category,
        cast(quantity as {{ dbt.type_bigint() }}) as quantity,
        {{ stripe_minor('amount') }} as amount_minor,
        upper(currency) as currency,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
