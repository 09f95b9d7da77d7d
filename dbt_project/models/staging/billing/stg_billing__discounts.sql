with

source as (
    select * from {{ source('raw', 'billing_discounts') }}
),

renamed as (
    select
        discount_id,
        account_id,
        category,
        upper(currency) as currency,
        cast(percent_off as {{ money_type() }}) as percent_off,
        cast(amount_off_minor as {{ dbt.type_bigint() }}) as amount_off_minor,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
