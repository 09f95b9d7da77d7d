with

source as (
    select * from {{ source('raw', 'batch_ledger') }}
),

renamed as (
    select
        batch_id,
        source as batch_source,
        cast(interval_start as {{ dbt.type_timestamp() }}) as interval_start,
        cast(interval_end as {{ dbt.type_timestamp() }}) as interval_end,
        cast(row_count as {{ dbt.type_bigint() }}) as row_count,
        checksum,
        status,
        cast(loaded_at as {{ dbt.type_timestamp() }}) as loaded_at
    from source
)

select * from renamed
