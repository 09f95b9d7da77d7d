with

source as (
    select * from {{ source('raw', 'billing_credits') }}
),

renamed as (
    select
        credit_id,
        account_id,
        upper(currency) as currency,
        cast(amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
        cast(granted_at as {{ dbt.type_timestamp() }}) as granted_at,
        cast(expires_at as {{ dbt.type_timestamp() }}) as expires_at,
        reason as credit_reason,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
