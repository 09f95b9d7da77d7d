-- Money identity: the invoice lines and the invoices hold the same money, per currency, and
-- each invoice's total is the sum of its rounded lines. Returns the rows that disagree.
with

lines_per_currency as (
    select
        currency,
        sum(amount_minor) as lines_minor,
        count(*) as line_count
    from {{ ref('fct_invoice_lines') }}
    group by currency
),

invoices_per_currency as (
    select
        currency,
        sum(total_minor) as invoices_minor,
        sum(line_count) as line_count
    from {{ ref('fct_invoices') }}
    group by currency
),

per_currency as (
    select
        'currency' as scope,
        coalesce(lines_per_currency.currency, invoices_per_currency.currency) as scope_key,
        lines_per_currency.lines_minor,
        invoices_per_currency.invoices_minor
    from lines_per_currency
    full outer join invoices_per_currency
        on lines_per_currency.currency = invoices_per_currency.currency
    where
        lines_per_currency.lines_minor is null
        or invoices_per_currency.invoices_minor is null
        or lines_per_currency.lines_minor <> invoices_per_currency.invoices_minor
        or lines_per_currency.line_count <> invoices_per_currency.line_count
),

per_invoice as (
    select
        'invoice' as scope,
        invoices.invoice_id as scope_key,
        sum(invoice_lines.amount_minor) as lines_minor,
        max(invoices.total_minor) as invoices_minor
    from {{ ref('fct_invoices') }} as invoices
    left join {{ ref('fct_invoice_lines') }} as invoice_lines
        on invoices.invoice_id = invoice_lines.invoice_id
    group by invoices.invoice_id
    having sum(invoice_lines.amount_minor) is null or sum(invoice_lines.amount_minor) <> max(invoices.total_minor)
)

select * from per_currency
union all
select * from per_invoice
