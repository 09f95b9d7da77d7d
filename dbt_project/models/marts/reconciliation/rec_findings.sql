-- One row per reconciliation finding: every row of the rec_* models whose status is not OK
-- (OK = matched, within_tolerance, late_pending, explained), plus every quarantined raw row.
-- Key fields per check (the others are NULL):
--   usage_daily       account_id, category, day
--   invoice_totals    account_id, period
--   invoice_lines     account_id, period, category
--   payments          object_id
--   issued_vs_current account_id, period, category
--   usage_period      account_id, category, period - reported only when no finer finding (a day of
--                     the period, the period's invoice or its line) already reports the same usage:
--                     it exists to catch what only the period shows (days each within tolerance
--                     that add up to drift, meterline's rated count against metering)
--   balance_transactions object_id (a charge, refund or payout)
--   completeness      object_id (the source), day: the hours of the day no loaded batch covers
--   freshness         object_id (the source)
--   row_counts        object_id (source|upstream layer|downstream layer)
--   quarantine        reason, account_id, category, day
{% set ok_statuses = ok_statuses() %}
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
        ]) }} as detail,
        cast(abs_diff as {{ money_type() }}) as difference,
        cast('units' as {{ dbt.type_string() }}) as unit
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
        ]) }} as detail,
        cast(abs_diff as {{ money_type() }}) as difference,
        cast(coalesce(computed_currency, stripe_currency) as {{ dbt.type_string() }}) as unit
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
        ]) }} as detail,
        cast(abs(coalesce(computed_amount_minor, 0) - coalesce(stripe_amount_minor, 0)) as {{ money_type() }})
            as difference,
        cast('minor units' as {{ dbt.type_string() }}) as unit
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
        ]) }} as detail,
        cast(abs(coalesce(amount_minor, 0) - coalesce(expected_amount_minor, 0)) as {{ money_type() }}) as difference,
        cast(currency as {{ dbt.type_string() }}) as unit
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
        ]) }} as detail,
        cast(abs(coalesce(current_amount_minor, 0) - coalesce(issued_amount_minor, 0)) as {{ money_type() }})
            as difference,
        cast('minor units' as {{ dbt.type_string() }}) as unit
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
        end as detail,
        cast(null as {{ money_type() }}) as difference,
        cast(null as {{ dbt.type_string() }}) as unit
    from {{ ref('fct_quarantine') }}
),

usage_period as (
    select
        'usage_period' as check_name,
        periods.status,
        periods.account_id,
        periods.category,
        periods.period,
        {{ null_text }} as day,
        {{ null_text }} as object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "'metering='", as_text('periods.metering_quantity'), "' billing='", as_text('periods.billing_quantity'),
            "' rated='", as_text('periods.computed_metered_quantity'),
            "' invoiced='", as_text('periods.invoiced_quantity'), "' stripe='", as_text('periods.stripe_quantity')
        ]) }} as detail,
        cast(coalesce(periods.metering_billing_abs_diff, periods.invoiced_stripe_abs_diff) as {{ money_type() }})
            as difference,
        cast('units' as {{ dbt.type_string() }}) as unit
    from {{ ref('rec_usage_period') }} as periods
    where
        periods.status not in {{ ok_statuses }}
        and not exists (
            select 1
            from {{ ref('rec_usage_daily') }} as day_rows
            where
                day_rows.classified_status not in {{ ok_statuses }}
                and day_rows.account_id = periods.account_id
                and day_rows.category = periods.category
                and {{ format_period('day_rows.day') }} = periods.period
        )
        and not exists (
            select 1
            from {{ ref('rec_invoice_totals') }} as totals
            where
                totals.classified_status not in {{ ok_statuses }}
                and totals.account_id = periods.account_id
                and totals.period = periods.period
        )
        and not exists (
            select 1
            from {{ ref('rec_invoice_lines') }} as line_rows
            where
                line_rows.classified_status not in {{ ok_statuses }}
                and line_rows.account_id = periods.account_id
                and line_rows.period = periods.period
                and line_rows.category = periods.category
        )
        and not exists (
            select 1
            from {{ ref('rec_issued_vs_current') }} as restated
            where
                restated.classified_status not in {{ ok_statuses }}
                and restated.account_id = periods.account_id
                and restated.period = periods.period
                and restated.category = periods.category
        )
),

balance_transactions as (
    select
        'balance_transactions' as check_name,
        status,
        account_id,
        {{ null_text }} as category,
        {{ null_text }} as period,
        {{ null_text }} as day,
        object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "object_type", "' '", "object_id", "' balance_transaction='", as_text('balance_transaction_id'),
            "' amount='", as_text('amount_minor'), "' expected='", as_text('expected_amount_minor'),
            "' fee='", as_text('fee_minor'), "' net='", as_text('net_minor'), "' '", as_text('currency')
        ]) }} as detail,
        cast(abs_diff as {{ money_type() }}) as difference,
        cast(currency as {{ dbt.type_string() }}) as unit
    from {{ ref('rec_balance_transactions') }}
    where status not in {{ ok_statuses }}
),

completeness as (
    select
        'completeness' as check_name,
        status,
        {{ null_text }} as account_id,
        {{ null_text }} as category,
        {{ null_text }} as period,
        {{ format_day('day') }} as day,
        source_name as object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "'hours not extracted: '", as_text('count(*)'), "' first '", as_text('min(hour_start)')
        ]) }} as detail,
        cast(count(*) as {{ money_type() }}) as difference,
        cast('hours' as {{ dbt.type_string() }}) as unit
    from {{ ref('rec_source_completeness') }}
    where status not in {{ ok_statuses }}
    group by status, day, source_name
),

freshness as (
    select
        'freshness' as check_name,
        status,
        {{ null_text }} as account_id,
        {{ null_text }} as category,
        {{ null_text }} as period,
        {{ null_text }} as day,
        source_name as object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "'newest data '", as_text('newest_data_at'), "' lags as_of '", as_text('as_of'),
            "' by '", as_text('lag_hours'), "' h (limit '", as_text('max_lag_hours'), "' h)'"
        ]) }} as detail,
        cast(lag_hours as {{ money_type() }}) as difference,
        cast('hours' as {{ dbt.type_string() }}) as unit
    from {{ ref('rec_source_freshness') }}
    where status not in {{ ok_statuses }}
),

row_counts as (
    select
        'row_counts' as check_name,
        status,
        {{ null_text }} as account_id,
        {{ null_text }} as category,
        {{ null_text }} as period,
        {{ null_text }} as day,
        layer_pair_id as object_id,
        {{ null_text }} as reason,
        {{ dbt.concat([
            "upstream_layer", "' rows='", as_text('upstream_rows'),
            "' '", "downstream_layer", "' rows='", as_text('downstream_rows')
        ]) }} as detail,
        cast(abs(upstream_rows - downstream_rows) as {{ money_type() }}) as difference,
        cast('rows' as {{ dbt.type_string() }}) as unit
    from {{ ref('rec_layer_row_counts') }}
    where status not in {{ ok_statuses }}
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
union all
select * from usage_period
union all
select * from balance_transactions
union all
select * from completeness
union all
select * from freshness
union all
select * from row_counts
