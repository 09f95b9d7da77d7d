-- Deferred revenue and unbilled receivables rolled forward by accounting month and currency,
-- from the general journal (fct_journal_lines), so the roll-forward ties to the ledger. Each
-- movement is classified by the journal entry's type, never by its debit or credit side:
--   deferred_revenue      (a liability: prepaid credits sold, not yet used)
--                         billed     = credit_grant entries (prepaid credits sold)
--                         recognized = invoice entries (credits applied) + breakage (expired)
--   unbilled_receivables  (an asset: revenue earned, not yet invoiced)
--                         recognized = recognition entries (revenue earned)
--                         billed     = invoice entries (invoiced)
--   both                  voided     = void entries: the reversal of a voided invoice's lines
--                         catchup    = catch-up entries for locked months (net, any cause)
-- billed and recognized are net amounts of their entry types in the direction the formula
-- uses; voided and catchup are the change they make to the balance (positive raises it):
--   deferred_revenue:     closing = opening + billed - recognized + voided + catchup
--   unbilled_receivables: closing = opening + recognized - billed + voided + catchup
-- Closing is the journal's running balance of the GL key, over every entry type: a line of a
-- type this model does not classify breaks the formula, and tests/integrity/rollforward_ties_out
-- fails on it. Balances are positive in their natural side (credit for the liability, debit for
-- the asset).
with

journal as (
    select
        currency,
        accounting_period,
        gl_key as balance,
        entry_type,
        -- the change to the balance in its natural side
        case when gl_key = 'deferred_revenue' then -amount_minor else amount_minor end as change_minor
    from {{ ref('fct_journal_lines') }}
    where gl_key in ('deferred_revenue', 'unbilled_receivables')
),

months as (
    select distinct accounting_period
    from {{ ref('fct_journal_lines') }}
),

-- a currency's rows start with its first movement, so a currency that appears later never adds
-- rows to a locked month
currencies as (
    select
        currency,
        min(accounting_period) as first_period
    from journal
    group by currency
),

balances as (
    select 'deferred_revenue' as balance
    union all
    select 'unbilled_receivables' as balance
),

grid as (
    select
        currencies.currency,
        months.accounting_period,
        balances.balance
    from currencies
    inner join months
        on currencies.first_period <= months.accounting_period
    cross join balances
),

movements as (
    select
        grid.currency,
        grid.accounting_period,
        grid.balance,
        coalesce(sum(journal.change_minor), 0) as change_minor,
        coalesce(sum(case
            when grid.balance = 'deferred_revenue' and journal.entry_type = 'credit_grant'
                then journal.change_minor
            when grid.balance = 'unbilled_receivables' and journal.entry_type = 'invoice'
                then -journal.change_minor
            else 0
        end), 0) as billed_minor,
        coalesce(sum(case
            when grid.balance = 'deferred_revenue' and journal.entry_type in ('invoice', 'breakage')
                then -journal.change_minor
            when grid.balance = 'unbilled_receivables' and journal.entry_type = 'recognition'
                then journal.change_minor
            else 0
        end), 0) as recognized_minor,
        coalesce(sum(case when journal.entry_type = 'void' then journal.change_minor else 0 end), 0)
            as voided_minor,
        coalesce(sum(case when journal.entry_type = 'catchup' then journal.change_minor else 0 end), 0)
            as catchup_minor
    from grid
    left join journal
        on
            grid.currency = journal.currency
            and grid.accounting_period = journal.accounting_period
            and grid.balance = journal.balance
    group by grid.currency, grid.accounting_period, grid.balance
),

rolled as (
    select
        *,
        {{ running_sum('change_minor', ['currency', 'balance'], 'accounting_period') }} as closing_minor
    from movements
)

select
    {{ dbt.concat(["currency", "'|'", "accounting_period", "'|'", "balance"]) }} as rollforward_key,
    currency,
    accounting_period,
    balance,
    cast(closing_minor - change_minor as {{ dbt.type_bigint() }}) as opening_minor,
    cast(billed_minor as {{ dbt.type_bigint() }}) as billed_minor,
    cast(recognized_minor as {{ dbt.type_bigint() }}) as recognized_minor,
    cast(voided_minor as {{ dbt.type_bigint() }}) as voided_minor,
    cast(catchup_minor as {{ dbt.type_bigint() }}) as catchup_minor,
    cast(closing_minor as {{ dbt.type_bigint() }}) as closing_minor
from rolled
