with

source as (
    select * from {{ source('raw', 'billing_commitments') }}
),

renamed as (
    select
        commitment_id,
        account_id,
        upper(currency) as currency,
        cast(minimum_minor as {{ dbt.type_bigint() }}) as minimum_minor,
        cast(starts_on as date) as starts_on,
        cast(ends_on as date) as ends_on,
        _batch_id,
        _extracted_at,
        _source
    from source
)

select * from renamed
