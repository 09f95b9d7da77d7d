-- One row per account, locked billing period and invoice line category: the line as issued
-- against the line as computed now. A difference is late data (or a restatement) after close.
with

locks as (
    select * from {{ ref('stg_ledger__period_locks') }}
),

issued_lines as (
    select issued.*
    from {{ ref('stg_ledger__issued_invoice_lines') }} as issued
    inner join locks
        on issued.period = locks.period
),

current_lines as (
    select * from {{ ref('fct_invoice_lines') }}
    where is_period_locked
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
)

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
    end as status
from joined
