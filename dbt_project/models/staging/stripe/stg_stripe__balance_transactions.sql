with

source as (
    select * from {{ source('raw', 'stripe_balance_transactions') }}
),

renamed as (
    select
        id as balance_transaction_id,
        type as balance_transaction_type,
        source_id,
        cast(amount as {{ dbt.type_bigint() }}) as amount_minor,
        cast(fee as {{ dbt.type_bigint() }}) as fee_minor,
        cast(net as {{ dbt.type_bigint() }}) as net_minor,
        upper(currency) as currency,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
