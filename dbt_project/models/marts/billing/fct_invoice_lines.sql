-- noqa: disable=RF03,RF04,LT05
-- One row per invoice line, for every account and billing period: what was billed (issued
-- periods, straight from the ledger, never recomputed) or what will be billed (draft periods:
-- the lines computed now, the adjustments for issued periods that land on this invoice, and the
-- prepaid credits it draws). service_period is the period a line bills; it differs from
-- period on adjustment lines.
with

periods as (
    select * from {{ ref('int_billing_periods') }}
),

locks as (
    select * from {{ ref('stg_ledger__period_locks') }}
),

issued_invoices as (
    select * from {{ ref('stg_ledger__issued_invoices') }}
),

issued_lines as (
    select
        issued_lines.invoice_line_id,
        issued_lines.invoice_id,
        issued_lines.account_id,
        issued_lines.period,
        issued_lines.service_period,
        issued_lines.line_key,
        issued_lines.line_type,
        issued_lines.category,
        issued_lines.currency,
        issued_lines.quantity,
        issued_lines.amount_minor,
        true as is_period_locked,
        case when issued_invoices.voided_at is null then 'issued' else 'void' end as state
    from {{ ref('stg_ledger__issued_invoice_lines') }} as issued_lines
    inner join locks
        on issued_lines.period = locks.period
    left join issued_invoices
        on issued_lines.invoice_id = issued_invoices.invoice_id
),

draft_current as (
    select
        current_lines.account_id,
        current_lines.period,
        current_lines.period as service_period,
        current_lines.line_key,
        current_lines.line_type,
        current_lines.category,
        current_lines.currency,
        current_lines.quantity,
        current_lines.amount_minor
    from {{ ref('int_invoice_lines_current') }} as current_lines
    left join locks
        on current_lines.period = locks.period
    where locks.period is null
),

draft_adjustments as (
    select
        account_id,
        target_period as period,
        service_period,
        {{ dbt.concat(["'adjustment|'", "service_period", "'|'", "line_key"]) }} as line_key,
        'adjustment' as line_type,
        category,
        currency,
        quantity,
        amount_minor
    from {{ ref('int_invoice_adjustments') }}
    where target_period is not null
),

draft_credits as (
    select
        drawdowns.account_id,
        drawdowns.period,
        drawdowns.period as service_period,
        {{ dbt.concat(["'credit|'", "drawdowns.credit_id"]) }} as line_key,
        'credit' as line_type,
        'credit' as category,
        accounts.currency,
        cast(1 as {{ dbt.type_bigint() }}) as quantity,
        -drawdowns.drawn_minor as amount_minor
    from {{ ref('int_credit_drawdowns') }} as drawdowns
    inner join {{ ref('int_billing_accounts_snapshot') }} as accounts
        on drawdowns.account_id = accounts.account_id
    where drawdowns.drawn_minor > 0
),

draft_lines as (
    select * from draft_current
    union all
    select * from draft_adjustments
    union all
    select * from draft_credits
),

drafts as (
    select
        {{ dbt.concat(["invoice_id", "':'", "line_key"]) }} as invoice_line_id,
        keyed.*
    from (
        select
            {{ dbt.concat(["'inv_'", "draft_lines.account_id", "'_'", "draft_lines.period"]) }} as invoice_id,
            draft_lines.*
        from draft_lines
    ) as keyed
),

lines as (
    select * from issued_lines
    union all
    select
        invoice_line_id,
        invoice_id,
        account_id,
        period,
        service_period,
        line_key,
        line_type,
        category,
        currency,
        quantity,
        amount_minor,
        false as is_period_locked,
        'draft' as state
    from drafts
)

select
    lines.invoice_line_id,
    lines.invoice_id,
    lines.account_id,
    lines.period,
    periods.period_start,
    periods.period_end,
    lines.service_period,
    lines.line_key,
    lines.line_type,
    lines.category,
    lines.currency,
    lines.quantity,
    cast(lines.amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
    lines.is_period_locked,
    lines.state
from lines
left join periods
    on lines.period = periods.period
