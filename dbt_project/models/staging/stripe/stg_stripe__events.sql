with

source as (
    select * from {{ source('raw', 'stripe_events') }}
),

renamed as (
    select
        id as event_id,
        type as event_type,
        object_type,
        object_id,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        object_json,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
