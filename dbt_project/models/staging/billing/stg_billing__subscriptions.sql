with

source as (
    select * from {{ source('raw', 'billing_subscriptions') }}
),

renamed as (
    select
        subscription_id,
        account_id,
        plan_id,
        cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
        cast(ended_at as {{ dbt.type_timestamp() }}) as ended_at,
        coalesce(lower(rounding_mode), 'half_even') as rounding_mode,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
