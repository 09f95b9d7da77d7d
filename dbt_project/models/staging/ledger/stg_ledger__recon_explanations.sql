with

source as (
    select * from {{ source('ledger', 'recon_explanations') }}
),

renamed as (
    select
        explanation_id,
        check_name,
        account_id,
        category,
        period,
        day,
        object_id,
        reason,
        explained_by,
        cast(recorded_at as {{ dbt.type_timestamp() }}) as recorded_at,
        cast(expires_at as {{ dbt.type_timestamp() }}) as expires_at,
        cast(revoked_at as {{ dbt.type_timestamp() }}) as revoked_at
    from source
)

select * from renamed
