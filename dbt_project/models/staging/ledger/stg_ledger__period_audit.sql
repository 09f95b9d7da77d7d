with

source as (
    select * from {{ source('ledger', 'period_audit') }}
),

renamed as (
    select
        seq,
        period,
        action,
        reason,
        requested_by,
        cast(as_of as {{ dbt.type_timestamp() }}) as as_of,
        exports_manifest_sha256
    from source
)

select * from renamed
