with

source as (
    select * from {{ source('raw', 'stripe_payouts') }}
),

renamed as (
    select
        id as payout_id,
        {{ stripe_minor('amount') }} as amount_minor,
        upper(currency) as currency,
        status as payout_status,
        cast(arrival_date as {{ dbt.type_timestamp() }}) as arrival_at,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
