with

source as (
    select * from {{ source('ledger', 'period_locks') }}
),

renamed as (
    select
        period,
        cast(locked_at_interval as {{ dbt.type_timestamp() }}) as locked_at_interval,
        exports_manifest_sha256
    from source
)

select * from renamed
