-- The general journal: one row per journal line, debit positive in amount_minor, split into
-- debit_minor / credit_minor, with the GL account from the gl_accounts seed (NULL when the seed has
-- no row for gl_key: the period close stops on it). Locked accounting periods never change:
-- their lines are the ones frozen at their close (ledger.locked_journal_lines). What is known now
-- about a locked period but differs from what was frozen - late usage, a retroactive price, a
-- late Stripe object - is booked as one catch-up entry per locked period, account and currency,
-- on the first day of the first open period after it.
with

computed as (
    select * from {{ ref('int_journal_lines_computed') }}
),

locks as (
    select * from {{ ref('int_accounting_locks') }}
),

targets as (
    select * from {{ ref('int_accounting_catchup_targets') }}
),

locked as (
    select * from {{ ref('stg_ledger__locked_journal_lines') }}
),

open_lines as (
    select
        computed.journal_line_id,
        computed.entry_id,
        computed.entry_date,
        computed.accounting_period,
        computed.entry_type,
        computed.account_id,
        computed.currency,
        computed.gl_key,
        computed.product,
        computed.amount_minor,
        computed.memo,
        false as is_catchup,
        computed.service_period,
        computed.reference,
        cast(null as {{ dbt.type_string() }}) as gl_account,
        cast(null as {{ dbt.type_string() }}) as gl_account_name,
        cast(null as {{ dbt.type_string() }}) as gl_account_type
    from computed
    left join locks
        on {{ accounting_lock_period('computed.accounting_period') }} = locks.period
    where locks.period is null
),

differences as (
    select
        accounting_period as locked_period,
        account_id,
        currency,
        gl_key,
        product,
        reference,
        sum(amount_minor) as amount_minor
    from (
        select
            {{ accounting_lock_period('computed.accounting_period') }} as accounting_period,
            computed.account_id,
            computed.currency,
            computed.gl_key,
            computed.product,
            computed.reference,
            computed.amount_minor
        from computed
        inner join locks
            on {{ accounting_lock_period('computed.accounting_period') }} = locks.period
        union all
        -- what is frozen about a locked period: its own lines, and the catch-ups for it that
        -- later locked periods already booked
        select
            case
                when is_catchup then service_period
                else {{ accounting_lock_period('accounting_period') }}
            end as accounting_period,
            account_id,
            currency,
            gl_key,
            product,
            reference,
            -amount_minor as amount_minor
        from locked
    ) as both_sides
    group by accounting_period, account_id, currency, gl_key, product, reference
    having sum(amount_minor) <> 0
),

catchup_lines as (
    select
        {{ dbt.concat([
            "'catchup|'", "differences.locked_period", "'|'", "coalesce(differences.account_id, '')", "'|'",
            "differences.currency", "'|'", "differences.gl_key", "'|'", "coalesce(differences.product, '')", "'|'",
            "coalesce(differences.reference, '')"]) }}
            as journal_line_id,
        {{ dbt.concat([
            "'catchup|'", "differences.locked_period", "'|'", "coalesce(differences.account_id, '')", "'|'",
            "differences.currency"]) }} as entry_id,
        targets.target_start as entry_date,
        targets.target_period as accounting_period,
        'catchup' as entry_type,
        differences.account_id,
        differences.currency,
        differences.gl_key,
        differences.product,
        differences.amount_minor,
        {{ dbt.concat(["'Catch-up for locked period '", "differences.locked_period"]) }} as memo,
        true as is_catchup,
        differences.locked_period as service_period,
        differences.reference,
        cast(null as {{ dbt.type_string() }}) as gl_account,
        cast(null as {{ dbt.type_string() }}) as gl_account_name,
        cast(null as {{ dbt.type_string() }}) as gl_account_type
    from differences
    inner join targets
        on differences.locked_period = targets.locked_period
),

all_lines as (
    select * from open_lines
    union all
    select
        journal_line_id,
        entry_id,
        entry_date,
        accounting_period,
        entry_type,
        account_id,
        currency,
        gl_key,
        product,
        amount_minor,
        memo,
        is_catchup,
        service_period,
        reference,
        gl_account,
        gl_account_name,
        gl_account_type
    from locked
    union all
    select * from catchup_lines
)

select
    all_lines.journal_line_id,
    all_lines.entry_id,
    all_lines.entry_date,
    all_lines.accounting_period,
    all_lines.entry_type,
    all_lines.account_id,
    all_lines.currency,
    all_lines.gl_key,
    -- a locked line keeps the GL account it was exported with, whatever the mapping says now
    coalesce(all_lines.gl_account, gl_accounts.gl_account) as gl_account,
    coalesce(all_lines.gl_account_name, gl_accounts.gl_account_name) as gl_account_name,
    coalesce(all_lines.gl_account_type, gl_accounts.gl_account_type) as gl_account_type,
    all_lines.product,
    cast(all_lines.amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
    cast(case when all_lines.amount_minor > 0 then all_lines.amount_minor else 0 end as {{ dbt.type_bigint() }})
        as debit_minor,
    cast(case when all_lines.amount_minor < 0 then -all_lines.amount_minor else 0 end as {{ dbt.type_bigint() }})
        as credit_minor,
    all_lines.memo,
    all_lines.is_catchup,
    all_lines.service_period,
    all_lines.reference,
    locks.period is not null as is_period_locked
from all_lines
left join {{ ref('gl_accounts') }} as gl_accounts
    on all_lines.gl_key = gl_accounts.gl_key
left join locks
    on {{ accounting_lock_period('all_lines.accounting_period') }} = locks.period
