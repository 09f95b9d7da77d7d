-- noqa: disable=RF03,RF04,LT05
with

source as (
    select * from {{ source('ledger', 'issued_invoices') }}
),

renamed as (
    select
        invoice_id,
        account_id,
        period,
        upper(currency) as currency,
        cast(total_minor as {{ dbt.type_bigint() }}) as total_minor,
        cast(line_count as {{ dbt.type_bigint() }}) as line_count,
        cast(coalesce(version, 1) as {{ dbt.type_bigint() }}) as version,
        content_hash,
        cast(voided_at as {{ dbt.type_timestamp() }}) as voided_at,
        void_reason
    from source
)

select * from renamed
