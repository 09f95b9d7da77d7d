-- noqa: disable=RF03,RF04,LT05
with

source as (
    select * from {{ source('ledger', 'invoice_versions') }}
),

renamed as (
    select
        invoice_id,
        cast(version as {{ dbt.type_bigint() }}) as version,
        content_hash,
        cast(total_minor as {{ dbt.type_bigint() }}) as total_minor,
        cast(as_of as {{ dbt.type_timestamp() }}) as as_of
    from source
)

select * from renamed
