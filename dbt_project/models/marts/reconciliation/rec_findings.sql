-- One row per reconciliation finding: every row of the rec_* models whose status is not OK
-- (OK = matched, within_tolerance, late_pending, explained), plus every quarantined raw row.
-- Key fields per check (the others are NULL):
--   usage_daily       account_id, category, day
--   invoice_totals    account_id, period
--   invoice_lines     account_id, period, category
--   payments          object_id
--   issued_vs_current account_id, period, category
--   quarantine        reason, account_id, category, day
{% set ok_statuses = "('matched', 'within_tolerance', 'late_pending', 'explained')" %}
{% set null_text = "cast(null as " ~ dbt.type_string() ~ ")" %}

with

usage_daily as (
    select
        'usage_daily' as check_name,
        status,
        account_id,
        category,
        {{ null_text }} as period,
        {{ format_day('day') }} as day,
        {{ null_text }} as object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "'metering='", as_text('metering_quantity'),
            "' billing='", as_text('billing_quantity'),
            "' diff='", as_text('abs_diff'),
            "case when billing_rows_at_latest > 1 then "
            ~ dbt.concat(["' billing_rows_at_latest='", as_text('billing_rows_at_latest')])
            ~ " else '' end"
        ]) }} as detail
    from {{ ref('rec_usage_daily') }}
    where status not in {{ ok_statuses }}
),

invoice_totals as (
    select
        'invoice_totals' as check_name,
        status,
        account_id,
        {{ null_text }} as category,
        period,
        {{ null_text }} as day,
        {{ null_text }} as object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "'computed='", as_text('computed_total_minor'), "' '", as_text('computed_currency'),
            "' stripe='", as_text('stripe_total_minor'), "' '", as_text('stripe_currency'),
            "' stripe_invoices='", as_text('stripe_invoice_count'),
            "' computed_source='", as_text('computed_source')
        ]) }} as detail
    from {{ ref('rec_invoice_totals') }}
    where status not in {{ ok_statuses }}
),

invoice_lines as (
    select
        'invoice_lines' as check_name,
        status,
        account_id,
        category,
        period,
        {{ null_text }} as day,
        {{ null_text }} as object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "'computed quantity='", as_text('computed_quantity'), "' amount='", as_text('computed_amount_minor'),
            "' stripe quantity='", as_text('stripe_quantity'), "' amount='", as_text('stripe_amount_minor')
        ]) }} as detail
    from {{ ref('rec_invoice_lines') }}
    where status not in {{ ok_statuses }}
),

payments as (
    select
        'payments' as check_name,
        status,
        {{ null_text }} as account_id,
        {{ null_text }} as category,
        {{ null_text }} as period,
        {{ null_text }} as day,
        object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "object_type", "' '", "object_id", "' -> '", as_text('related_object_id'),
            "' amount='", as_text('amount_minor'), "' expected='", as_text('expected_amount_minor'),
            "' '", as_text('currency')
        ]) }} as detail
    from {{ ref('rec_payments') }}
    where status not in {{ ok_statuses }}
),

issued_vs_current as (
    select
        'issued_vs_current' as check_name,
        status,
        account_id,
        category,
        period,
        {{ null_text }} as day,
        {{ null_text }} as object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "'issued quantity='", as_text('issued_quantity'), "' amount='", as_text('issued_amount_minor'),
            "' current quantity='", as_text('current_quantity'), "' amount='", as_text('current_amount_minor')
        ]) }} as detail
    from {{ ref('rec_issued_vs_current') }}
    where status not in {{ ok_statuses }}
),

quarantine as (
    select
        'quarantine' as check_name,
        'quarantined' as status,
        account_id,
        category,
        {{ null_text }} as period,
        {{ format_day('day') }} as day,
        {{ null_text }} as object_id,
        reason,
        case
            when row_json is null
                then {{ dbt.concat([
                    "'batch='", as_text('_batch_id'), "' project='", as_text('project_id'),
                    "' outcome='", as_text('outcome'), "' hour_start='", as_text('hour_start'),
                    "' quantity='", as_text('quantity')
                ]) }}
            else {{ dbt.concat(["'batch='", as_text('_batch_id'), "' table='", "raw_table", "' row='", "row_json"]) }}
        end as detail
    from {{ ref('fct_quarantine') }}
)

select * from usage_daily
union all
select * from invoice_totals
union all
select * from invoice_lines
union all
select * from payments
union all
select * from issued_vs_current
union all
select * from quarantine
