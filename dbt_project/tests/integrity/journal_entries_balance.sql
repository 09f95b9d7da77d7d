-- Double entry: every journal entry's lines sum to zero in each currency, and so does every
-- accounting period. Returns the entries and periods that do not balance.
select
    'entry' as scope,
    entry_id as tie_key,
    currency,
    sum(debit_minor) as debits,
    sum(credit_minor) as credits
from {{ ref('fct_journal_lines') }}
group by entry_id, currency
having sum(debit_minor) <> sum(credit_minor)
union all
select
    'period' as scope,
    accounting_period as tie_key,
    currency,
    sum(debit_minor) as debits,
    sum(credit_minor) as credits
from {{ ref('fct_journal_lines') }}
group by accounting_period, currency
having sum(debit_minor) <> sum(credit_minor)
