{#
    Receivables aging (fin_receivables_aging, fin_receivables_aging_buckets; DECISIONLOG.md
    "Receivables aging"), shared so both models say the same:
    invoice_date_of(period_end)  the DATE an invoice is dated: its billing period's last day,
                                 as in the journal (usage is billed in arrears)
    due_date_of(invoice_date)    invoice date + var('payment_terms_days')
    aging_snapshot_ctes(cal)     two CTEs over the fin_calendar CTE `cal`: latest_day, and
                                 snapshots (snapshot_day, snapshot_period, is_month_end,
                                 is_latest): each complete month's last day and the latest
                                 report day
#}
{% macro invoice_date_of(period_end_expr) -%}
    cast({{ dbt.dateadd('day', -1, period_end_expr) }} as date)
{%- endmacro %}


{% macro due_date_of(invoice_date_expr) -%}
    cast({{ dbt.dateadd('day', var('payment_terms_days'), invoice_date_expr) }} as date)
{%- endmacro %}


{% macro aging_snapshot_ctes(calendar) -%}
latest_day as (
    select max(report_day) as report_day
    from {{ calendar }}
),

snapshots as (
    select
        {{ calendar }}.report_day as snapshot_day,
        {{ calendar }}.period as snapshot_period,
        {{ calendar }}.day_of_month = {{ calendar }}.days_in_period as is_month_end,
        {{ calendar }}.report_day = latest_day.report_day as is_latest
    from {{ calendar }}
    cross join latest_day
    where
        {{ calendar }}.day_of_month = {{ calendar }}.days_in_period
        or {{ calendar }}.report_day = latest_day.report_day
)
{%- endmacro %}
