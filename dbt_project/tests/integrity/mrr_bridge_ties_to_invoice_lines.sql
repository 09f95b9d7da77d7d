-- The MRR bridge ties to the invoices, computed from fct_invoice_lines and not from
-- fin_mrr_movements: for each currency and complete billing month, closing MRR = the recurring
-- lines (flat_fee, usage, reserved, commitment_true_up, discount; the month's own service
-- period; not void) of the month's invoices, summed per account and counted at 0 when negative
-- (DECISIONLOG.md, "MRR"); opening MRR = the previous complete month's closing (0 in the first);
-- and opening + carried in + new + expansion + reactivation + contraction + churn + unchanged
-- = closing. Returns the currency-months that do not tie.
with

months as (
    select distinct period
    from {{ ref('fin_calendar') }}
    where is_period_complete
),

account_months as (
    select
        invoice_lines.currency,
        invoice_lines.period,
        invoice_lines.account_id,
        sum(invoice_lines.amount_minor) as recurring_minor
    from {{ ref('fct_invoice_lines') }} as invoice_lines
    inner join months
        on invoice_lines.period = months.period
    where
        invoice_lines.state <> 'void'
        and invoice_lines.line_type in ('flat_fee', 'usage', 'reserved', 'commitment_true_up', 'discount')
        and invoice_lines.service_period = invoice_lines.period
    group by invoice_lines.currency, invoice_lines.period, invoice_lines.account_id
),

currencies as (
    select distinct currency
    from account_months
),

invoiced as (
    select
        currency,
        period,
        sum(case when recurring_minor > 0 then recurring_minor else 0 end) as mrr_minor
    from account_months
    group by currency, period
),

expected as (
    select
        currencies.currency,
        months.period,
        coalesce(invoiced.mrr_minor, 0) as closing_minor,
        coalesce(lag(coalesce(invoiced.mrr_minor, 0)) over (
            partition by currencies.currency order by months.period
        ), 0) as opening_minor
    from currencies
    cross join months
    left join invoiced
        on
            currencies.currency = invoiced.currency
            and months.period = invoiced.period
),

bridge as (
    select * from {{ ref('fin_mrr_bridge') }}
)

select
    coalesce(expected.currency, bridge.currency) as currency,
    coalesce(expected.period, bridge.period) as period,
    expected.opening_minor as invoiced_opening_minor,
    bridge.opening_mrr_minor,
    expected.closing_minor as invoiced_closing_minor,
    bridge.closing_mrr_minor,
    bridge.net_movement_minor
from expected
full outer join bridge
    on
        expected.currency = bridge.currency
        and expected.period = bridge.period
where
    coalesce(bridge.closing_mrr_minor, 0) <> coalesce(expected.closing_minor, 0)
    or coalesce(bridge.opening_mrr_minor, 0) <> coalesce(expected.opening_minor, 0)
    or coalesce(
        bridge.opening_mrr_minor + bridge.carried_in_minor + bridge.new_minor + bridge.expansion_minor
        + bridge.reactivation_minor + bridge.contraction_minor + bridge.churn_minor + bridge.unchanged_minor,
        0
    ) <> coalesce(bridge.closing_mrr_minor, 0)
