with

source as (
    select * from {{ source('raw', 'billing_price_books') }}
),

renamed as (
    select
        price_id,
        plan_id,
        category,
        cast(effective_from as date) as effective_from,
        cast(effective_to as date) as effective_to,
        lower(pricing_model) as pricing_model,
        cast(included_quantity as {{ dbt.type_bigint() }}) as included_quantity,
        cast(reserved_quantity as {{ dbt.type_bigint() }}) as reserved_quantity,
        cast(reserved_unit_price_decimal as {{ money_type() }}) as reserved_unit_price_decimal,
        cast(spend_cap_minor as {{ dbt.type_bigint() }}) as spend_cap_minor,
        cast(package_size as {{ dbt.type_bigint() }}) as package_size,
        cast(spike_multiplier as {{ money_type() }}) as spike_multiplier,
        cast(tier_start as {{ dbt.type_bigint() }}) as tier_start,
        cast(tier_end as {{ dbt.type_bigint() }}) as tier_end,
        cast(unit_price_decimal as {{ money_type() }}) as unit_price_decimal,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
