-- noqa: disable=RF03,RF04,LT05
-- Prepaid credits drawn down across the draft invoices, one row per credit and draft period.
-- A credit applies to an invoice of its account, in its currency, whose service period overlaps
-- its validity [granted_at, expires_at); what is left when it expires is forfeited. Its balance
-- is the grant minus what issued (not voided) invoices already drew. Each draft invoice, in
-- period order, draws up to its total before credits (never below zero), from the credits that
-- expire first (never-expiring last), then the oldest grant, then credit_id.
-- Sequential by nature (a period's draw depends on the balance the earlier ones left), so it is
-- a recursive CTE over the draft periods, set-based across accounts and credits.
with recursive

periods as (
    select * from {{ ref('int_billing_periods') }}
),

locks as (
    select * from {{ ref('stg_ledger__period_locks') }}
),

draft_periods as (
    select
        periods.period,
        periods.period_start,
        periods.period_end,
        row_number() over (order by periods.period) as period_index
    from periods
    left join locks
        on periods.period = locks.period
    where locks.period is null
),

issued_invoices as (
    select * from {{ ref('stg_ledger__issued_invoices') }}
    where voided_at is null
),

issued_draws as (
    select
        issued_lines.line_key,
        -sum(issued_lines.amount_minor) as drawn_minor
    from {{ ref('stg_ledger__issued_invoice_lines') }} as issued_lines
    inner join issued_invoices
        on issued_lines.invoice_id = issued_invoices.invoice_id
    where issued_lines.line_type = 'credit'
    group by issued_lines.line_key
),

credits as (
    select
        credits.credit_id,
        credits.account_id,
        credits.granted_at,
        credits.expires_at,
        coalesce(credits.expires_at, cast('9999-12-31' as {{ dbt.type_timestamp() }})) as expiry_order,
        cast(credits.amount_minor - coalesce(issued_draws.drawn_minor, 0) as {{ dbt.type_bigint() }}) as start_balance
    from {{ ref('int_billing_credits_snapshot') }} as credits
    inner join {{ ref('int_billing_accounts_snapshot') }} as accounts
        on
            credits.account_id = accounts.account_id
            and credits.currency = accounts.currency
    left join issued_draws
        on {{ dbt.concat(["'credit|'", "credits.credit_id"]) }} = issued_draws.line_key
),

draft_lines as (
    select
        account_id,
        period,
        amount_minor
    from {{ ref('int_invoice_lines_current') }}
    union all
    select
        account_id,
        target_period as period,
        amount_minor
    from {{ ref('int_invoice_adjustments') }}
    where target_period is not null
),

demand as (
    select
        draft_lines.account_id,
        draft_periods.period_index,
        cast(greatest(0, sum(draft_lines.amount_minor)) as {{ dbt.type_bigint() }}) as demand_minor
    from draft_lines
    inner join draft_periods
        on draft_lines.period = draft_periods.period
    group by draft_lines.account_id, draft_periods.period_index
),

credit_periods as (
    select
        credits.*,
        draft_periods.period_index,
        coalesce(demand.demand_minor, 0) as demand_minor,
        (
            credits.granted_at < draft_periods.period_end
            and (credits.expires_at is null or credits.expires_at > draft_periods.period_start)
        ) as is_eligible
    from credits
    cross join draft_periods
    left join demand
        on
            credits.account_id = demand.account_id
            and draft_periods.period_index = demand.period_index
),

drawdown (credit_id, account_id, expiry_order, granted_at, period_index, balance_before, draw) as (
    select
        credit_id,
        account_id,
        expiry_order,
        granted_at,
        period_index,
        start_balance as balance_before,
        cast(
            case
                when is_eligible
                    then least(
                            start_balance,
                            greatest(
                                0,
                                demand_minor - coalesce(sum(case when is_eligible then start_balance else 0 end) over (
                                    partition by account_id
                                    order by expiry_order, granted_at, credit_id
                                    rows between unbounded preceding and 1 preceding
                                ), 0)
                            )
                        )
                else 0
            end
            as {{ dbt.type_bigint() }}
        ) as draw
    from credit_periods
    where period_index = 1 and start_balance > 0
    union all
    select
        drawdown.credit_id,
        drawdown.account_id,
        drawdown.expiry_order,
        drawdown.granted_at,
        credit_periods.period_index,
        cast(drawdown.balance_before - drawdown.draw as {{ dbt.type_bigint() }}) as balance_before,
        cast(
            case
                when credit_periods.is_eligible
                    then least(
                            drawdown.balance_before - drawdown.draw,
                            greatest(0, credit_periods.demand_minor - coalesce(sum(
                                case
                                    when credit_periods.is_eligible then drawdown.balance_before - drawdown.draw else 0
                                end
                            ) over (
                                partition by drawdown.account_id
                                order by drawdown.expiry_order, drawdown.granted_at, drawdown.credit_id
                                rows between unbounded preceding and 1 preceding
                            ), 0))
                        )
                else 0
            end
            as {{ dbt.type_bigint() }}
        ) as draw
    from drawdown
    inner join credit_periods
        on
            drawdown.credit_id = credit_periods.credit_id
            and credit_periods.period_index = drawdown.period_index + 1
)

select
    {{ dbt.concat(["drawdown.credit_id", "'|'", "draft_periods.period"]) }} as credit_drawdown_id,
    drawdown.credit_id,
    drawdown.account_id,
    draft_periods.period,
    drawdown.balance_before,
    drawdown.draw as drawn_minor,
    drawdown.balance_before - drawdown.draw as balance_after
from drawdown
inner join draft_periods
    on drawdown.period_index = draft_periods.period_index
