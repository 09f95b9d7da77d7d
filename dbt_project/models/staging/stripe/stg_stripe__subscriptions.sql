with

source as (
    select * from {{ source('raw', 'stripe_subscriptions') }}
),

renamed as (
    select
        id as subscription_id,
        customer_id,
        account_id,
        status as subscription_status,
        upper(currency) as currency,
        cast(current_period_start as {{ dbt.type_timestamp() }}) as current_period_start_at,
        cast(current_period_end as {{ dbt.type_timestamp() }}) as current_period_end_at,
        cast(canceled_at as {{ dbt.type_timestamp() }}) as canceled_at,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
