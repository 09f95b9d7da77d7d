with

source as (
    select * from {{ source('raw', 'billing_plans') }}
),

renamed as (
    select
        plan_id,
        name as plan_name,
        upper(currency) as currency,
        cast(base_fee_minor as {{ dbt.type_bigint() }}) as base_fee_minor,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
