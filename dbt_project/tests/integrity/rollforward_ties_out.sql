-- The roll-forward ties out: opening + billed - recognized + voided + catchup = closing (deferred
-- revenue) and opening + recognized - billed + voided + catchup = closing (unbilled receivables),
-- so every journal line on the two GL keys is classified by its entry type; each month opens where the
-- previous one closed; and each closing equals the balance of its GL key in the journal at the
-- month's end. Returns the rows that do not tie.
with

rollforward as (
    select
        rollforward_key,
        currency,
        accounting_period,
        balance,
        opening_minor,
        billed_minor,
        recognized_minor,
        voided_minor,
        catchup_minor,
        closing_minor,
        lag(closing_minor) over (partition by currency, balance order by accounting_period) as previous_closing
    from {{ ref('fct_balance_rollforward') }}
),

journal_balances as (
    select
        months.currency,
        months.accounting_period,
        months.balance,
        sum(
            case when months.balance = 'deferred_revenue' then -journal.amount_minor else journal.amount_minor end
        ) as balance_minor
    from rollforward as months
    inner join {{ ref('fct_journal_lines') }} as journal
        on
            months.currency = journal.currency
            and months.balance = journal.gl_key
            and months.accounting_period >= journal.accounting_period
    group by months.currency, months.accounting_period, months.balance
)

select
    rollforward.rollforward_key,
    rollforward.closing_minor,
    journal_balances.balance_minor
from rollforward
left join journal_balances
    on
        rollforward.currency = journal_balances.currency
        and rollforward.accounting_period = journal_balances.accounting_period
        and rollforward.balance = journal_balances.balance
where
    (
        rollforward.balance = 'deferred_revenue'
        and rollforward.opening_minor + rollforward.billed_minor - rollforward.recognized_minor
        + rollforward.voided_minor + rollforward.catchup_minor
        <> rollforward.closing_minor
    )
    or (
        rollforward.balance = 'unbilled_receivables'
        and rollforward.opening_minor + rollforward.recognized_minor - rollforward.billed_minor
        + rollforward.voided_minor + rollforward.catchup_minor
        <> rollforward.closing_minor
    )
    or rollforward.opening_minor <> coalesce(rollforward.previous_closing, 0)
    or rollforward.closing_minor <> coalesce(journal_balances.balance_minor, 0)
