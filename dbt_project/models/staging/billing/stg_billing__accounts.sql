with

source as (
    select * from {{ source('raw', 'billing_accounts') }}
),

renamed as (
    select
        account_id,
        name as account_name,
        upper(currency) as currency,
        cast(billing_anchor_day as {{ dbt.type_int() }}) as billing_anchor_day,
        stripe_customer_id,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
