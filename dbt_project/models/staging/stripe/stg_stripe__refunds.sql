with

source as (
    select * from {{ source('raw', 'stripe_refunds') }}
),

renamed as (
    select
        id as refund_id,
        charge_id,
        cast(amount as {{ dbt.type_bigint() }}) as amount_minor,
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
