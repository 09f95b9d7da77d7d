with

source as (
    select * from {{ source('ledger', 'locked_journal_lines') }}
),

renamed as (
    select
        journal_line_id,
        entry_id,
        cast(entry_date as date) as entry_date,
        accounting_period,
        entry_type,
        account_id,
        currency,
        gl_key,
        gl_account,
        gl_account_name,
        gl_account_type,
        product,
        cast(amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
        memo,
        is_catchup,
        service_period,
        reference
    from source
)

select * from renamed
