-- One row per account and billing period: the invoice, total = sum of its rounded lines.
with

lines as (
    select * from {{ ref('fct_invoice_lines') }}
)

select
    invoice_id,
    account_id,
    period,
    period_start,
    period_end,
    currency,
    sum(amount_minor) as total_minor,
    count(*) as line_count,
    is_period_locked,
    state
from lines
group by
    invoice_id,
    account_id,
    period,
    period_start,
    period_end,
    currency,
    is_period_locked,
    state
