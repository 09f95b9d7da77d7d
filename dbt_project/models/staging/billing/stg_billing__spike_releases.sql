with

source as (
    select * from {{ source('raw', 'billing_spike_releases') }}
),

renamed as (
    select
        account_id,
        category,
        cast(day as date) as usage_day,
        cast(released_at as {{ dbt.type_timestamp() }}) as released_at,
        released_by,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
