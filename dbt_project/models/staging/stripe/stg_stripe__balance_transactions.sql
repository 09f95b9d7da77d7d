with

source as (
    select * from {{ source('raw', 'stripe_balance_transactions') }}
),

renamed as (
    select
        id as balance_transaction_id,
        type as balance_transaction_type,
        source_id,
        {{ stripe_minor('amount') }} as amount_minor,
        {{ stripe_minor('fee') }} as fee_minor,
        {{ stripe_minor('net') }} as net_minor,
        upper(currency) as currency,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
