-- Deferred revenue and unbilled receivables rolled forward by accounting month and currency,
-- from the general journal (fct_journal_lines), so the roll-forward ties to the ledger:
--   deferred_revenue      (a liability: prepaid credits sold, not yet used)
--                         closing = opening + billed - recognized; billed = credits to the account
--                         (credits sold), recognized = debits (credits applied to invoices, breakage)
--   unbilled_receivables  (an asset: revenue earned, not yet invoiced)
--                         closing = opening + recognized - billed; recognized = debits (revenue
--                         recognized), billed = credits (invoiced)
-- Balances are positive in their natural side (credit for the liability, debit for the asset).
with

journal as (
    select * from {{ ref('fct_journal_lines') }}
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
        coalesce(sum(case when journal.amount_minor > 0 then journal.amount_minor else 0 end), 0) as debit_minor,
        coalesce(sum(case when journal.amount_minor < 0 then -journal.amount_minor else 0 end), 0) as credit_minor
    from grid
    left join journal
        on
            grid.currency = journal.currency
            and grid.accounting_period = journal.accounting_period
            and grid.balance = journal.gl_key
    group by grid.currency, grid.accounting_period, grid.balance
),

directed as (
    select
        currency,
        accounting_period,
        balance,
        case when balance = 'deferred_revenue' then credit_minor else debit_minor end as increase_minor,
        case when balance = 'deferred_revenue' then debit_minor else credit_minor end as decrease_minor
    from movements
),

rolled as (
    select
        currency,
        accounting_period,
        balance,
        increase_minor,
        decrease_minor,
        sum(increase_minor - decrease_minor) over (
            partition by currency, balance
            order by accounting_period
            rows between unbounded preceding and current row
        ) as closing_minor
    from directed
)

select
    {{ dbt.concat(["currency", "'|'", "accounting_period", "'|'", "balance"]) }} as rollforward_key,
    currency,
    accounting_period,
    balance,
    cast(closing_minor - increase_minor + decrease_minor as {{ dbt.type_bigint() }}) as opening_minor,
    cast(case when balance = 'deferred_revenue' then increase_minor else decrease_minor end as {{ dbt.type_bigint() }})
        as billed_minor,
    cast(case when balance = 'deferred_revenue' then decrease_minor else increase_minor end as {{ dbt.type_bigint() }})
        as recognized_minor,
    cast(closing_minor as {{ dbt.type_bigint() }}) as closing_minor
from rolled
