-- One row per account, locked service period and invoice line category: what the issued
-- invoices (not voided) billed for the period - its original lines plus any adjustment lines
-- issued later - against the lines as computed now. A difference is late data or a
-- retroactive change after close that no issued invoice has trued up yet (the adjustment is
-- waiting on the next draft invoice). Credits are left out: they are drawn, never restated.
with

locks as (
    select * from {{ ref('stg_ledger__period_locks') }}
),

issued_lines as (
    select
        issued.account_id,
        issued.service_period as period,
        issued.category,
        min(issued.invoice_line_id) as invoice_line_id,
        sum(issued.quantity) as quantity,
        sum(issued.amount_minor) as amount_minor
    from {{ ref('stg_ledger__issued_invoice_lines') }} as issued
    inner join {{ ref('stg_ledger__issued_invoices') }} as invoices
        on issued.invoice_id = invoices.invoice_id
    inner join locks
        on issued.period = locks.period
    where
        invoices.voided_at is null
        and issued.line_type <> 'credit'
    group by issued.account_id, issued.service_period, issued.category
),

current_lines as (
    select
        current_lines.account_id,
        current_lines.period,
        current_lines.category,
        min(current_lines.current_line_id) as invoice_line_id,
        sum(current_lines.quantity) as quantity,
        sum(current_lines.amount_minor) as amount_minor
    from {{ ref('int_invoice_lines_current') }} as current_lines
    inner join locks
        on current_lines.period = locks.period
    group by current_lines.account_id, current_lines.period, current_lines.category
),

joined as (
    select
        coalesce(issued_lines.account_id, current_lines.account_id) as account_id,
        coalesce(issued_lines.period, current_lines.period) as period,
        coalesce(issued_lines.category, current_lines.category) as category,
        issued_lines.invoice_line_id as issued_invoice_line_id,
        current_lines.invoice_line_id as current_invoice_line_id,
        issued_lines.quantity as issued_quantity,
        current_lines.quantity as current_quantity,
        issued_lines.amount_minor as issued_amount_minor,
        current_lines.amount_minor as current_amount_minor
    from issued_lines
    full outer join current_lines
        on
            issued_lines.account_id = current_lines.account_id
            and issued_lines.period = current_lines.period
            and issued_lines.category = current_lines.category
),

classified as (
    select
        {{ dbt.concat(["account_id", "'|'", "period", "'|'", "category"]) }} as issued_line_rec_id,
        account_id,
        period,
        category,
        issued_invoice_line_id,
        current_invoice_line_id,
        issued_quantity,
        current_quantity,
        issued_amount_minor,
        current_amount_minor,
        case
            when issued_invoice_line_id is not null
                and current_invoice_line_id is not null
                and issued_quantity = current_quantity
                and issued_amount_minor = current_amount_minor
                then 'matched'
            else 'drift'
        end as classified_status
    from joined
),

explained as (
    select
        classified.*,
        {{ explanation_for('issued_vs_current', {
            'account_id': "classified.account_id",
            'period': "classified.period",
            'category': "classified.category"
        }) }} as explanation_id
    from classified
)

select
    explained.*,
    {{ explained_status('classified_status', 'explanation_id') }} as status
from explained
