with

source as (
    select * from {{ source('ledger', 'locked_revenue_daily') }}
),

renamed as (
    select
        account_id,
        currency,
        product,
        cast(revenue_date as date) as revenue_date,
        accounting_period,
        service_period,
        revenue_source,
        cast(revenue_minor as {{ dbt.type_bigint() }}) as revenue_minor,
        is_catchup
    from source
)

select * from renamed
