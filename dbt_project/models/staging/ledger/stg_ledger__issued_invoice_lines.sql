with

source as (
    select * from {{ source('ledger', 'issued_invoice_lines') }}
),

renamed as (
    select
        invoice_line_id,
        invoice_id,
        account_id,
        period,
        coalesce(service_period, period) as service_period,
        coalesce(line_key, category) as line_key,
        coalesce(line_type, case when category = 'base_fee' then 'flat_fee' else 'usage' end) as line_type,
        category,
        upper(currency) as currency,
        cast(quantity as {{ dbt.type_bigint() }}) as quantity,
        cast(amount_minor as {{ dbt.type_bigint() }}) as amount_minor
    from source
)

select * from renamed
