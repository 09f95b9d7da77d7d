-- Revenue ties out three ways. (1) Per accounting period and currency, recognized revenue
-- (fct_revenue_daily) equals the net credit to revenue and contra-revenue GL keys in the journal.
-- (2) Allocating reductions keeps every service period's total: the net product amounts equal
-- the invoice lines they come from (non-void; prepaid credits excluded, they are not revenue).
-- (3) Spreading over days keeps every amount: for service periods that ended before as_of, the
-- daily revenue of each product sums to its net amount. Returns what does not tie.
with

revenue as (
    select
        accounting_period,
        currency,
        sum(revenue_minor) as revenue_minor
    from {{ ref('fct_revenue_daily') }}
    group by accounting_period, currency
),

journal as (
    select
        accounting_period,
        currency,
        -sum(amount_minor) as revenue_minor
    from {{ ref('fct_journal_lines') }}
    where gl_key like 'revenue:%' or gl_key in ('refunds', 'contra_revenue')
    group by accounting_period, currency
),

prepaid as (
    select {{ dbt.concat(["'credit|'", "credit_id"]) }} as line_key
    from {{ ref('int_billing_credits_snapshot') }}
    where credit_reason = 'prepaid'
),

billed as (
    select
        invoice_lines.account_id,
        invoice_lines.service_period,
        invoice_lines.currency,
        sum(invoice_lines.amount_minor) as amount_minor
    from {{ ref('fct_invoice_lines') }} as invoice_lines
    left join prepaid
        on invoice_lines.line_key = prepaid.line_key
    where invoice_lines.state <> 'void' and prepaid.line_key is null
    group by invoice_lines.account_id, invoice_lines.service_period, invoice_lines.currency
),

allocated as (
    select
        account_id,
        service_period,
        currency,
        sum(net_minor) as amount_minor
    from {{ ref('int_revenue_product_amounts') }}
    group by account_id, service_period, currency
),

ended_periods as (
    select periods.period
    from {{ ref('int_billing_periods') }} as periods
    cross join {{ ref('int_ledger_as_of') }} as as_of
    where periods.period_end <= as_of.as_of
),

spread as (
    select
        account_id,
        service_period,
        currency,
        product,
        sum(revenue_minor) as amount_minor
    from {{ ref('int_revenue_daily_computed') }}
    where revenue_source = 'invoice_lines'
    group by account_id, service_period, currency, product
)

select
    'revenue_vs_journal' as tie,
    coalesce(revenue.accounting_period, journal.accounting_period) as tie_key,
    coalesce(revenue.revenue_minor, 0) as left_minor,
    coalesce(journal.revenue_minor, 0) as right_minor
from revenue
full outer join journal
    on
        revenue.accounting_period = journal.accounting_period
        and revenue.currency = journal.currency
where coalesce(revenue.revenue_minor, 0) <> coalesce(journal.revenue_minor, 0)
union all
select
    'allocation_keeps_totals' as tie,
    {{ dbt.concat([
        "coalesce(billed.account_id, allocated.account_id)", "'|'",
        "coalesce(billed.service_period, allocated.service_period)"]) }} as tie_key,
    coalesce(billed.amount_minor, 0) as left_minor,
    coalesce(allocated.amount_minor, 0) as right_minor
from billed
full outer join allocated
    on
        billed.account_id = allocated.account_id
        and billed.service_period = allocated.service_period
        and billed.currency = allocated.currency
where coalesce(billed.amount_minor, 0) <> coalesce(allocated.amount_minor, 0)
union all
select
    'daily_spread_keeps_totals' as tie,
    amounts.revenue_key as tie_key,
    amounts.net_minor as left_minor,
    coalesce(spread.amount_minor, 0) as right_minor
from {{ ref('int_revenue_product_amounts') }} as amounts
inner join ended_periods
    on amounts.service_period = ended_periods.period
left join spread
    on
        amounts.account_id = spread.account_id
        and amounts.service_period = spread.service_period
        and amounts.currency = spread.currency
        and amounts.product = spread.product
where amounts.net_minor <> coalesce(spread.amount_minor, 0)
