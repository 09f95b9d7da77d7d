-- The latest reconciliation (the rec_* marts of the last build, as of as_of) per scope, check
-- and status: how many rows were compared (rec_* rows of every status, OK ones included) and
-- how many are findings (fin_reconciliation_findings: not OK, plus quarantined rows). Scope
-- 'all' is the whole run; scope 'month' (scope_period 'YYYY-MM') counts the rows and findings
-- of that billing month: a period's, a day's within it, or, for payments and balance
-- transactions, the month their Stripe object (charge, refund, payout) was created in (macro
-- stripe_object_periods). Rows about a source (freshness, row counts, completeness) are in scope
-- 'all' only. A usage_period row that a finer finding already reports is compared but not a
-- finding again.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

findings as (
    select * from {{ ref('fin_reconciliation_findings') }}
),

object_periods as (
    {{ stripe_object_periods() }}
),

compared as (
    select
        'usage_daily' as check_name,
        {{ format_period('day') }} as scope_period,
        status
    from {{ ref('rec_usage_daily') }}
    union all
    select
        'usage_period' as check_name,
        period as scope_period,
        status
    from {{ ref('rec_usage_period') }}
    union all
    select
        'invoice_totals' as check_name,
        period as scope_period,
        status
    from {{ ref('rec_invoice_totals') }}
    union all
    select
        'invoice_lines' as check_name,
        period as scope_period,
        status
    from {{ ref('rec_invoice_lines') }}
    union all
    select
        'issued_vs_current' as check_name,
        period as scope_period,
        status
    from {{ ref('rec_issued_vs_current') }}
    union all
    select
        'payments' as check_name,
        object_periods.created_period as scope_period,
        rec_payments.status
    from {{ ref('rec_payments') }} as rec_payments
    left join object_periods
        on rec_payments.object_id = object_periods.object_id
    union all
    select
        'balance_transactions' as check_name,
        object_periods.created_period as scope_period,
        rec_balance_transactions.status
    from {{ ref('rec_balance_transactions') }} as rec_balance_transactions
    left join object_periods
        on rec_balance_transactions.object_id = object_periods.object_id
),

rows_and_findings as (
    select
        check_name,
        scope_period,
        status,
        1 as compared_rows,
        0 as findings
    from compared
    union all
    select
        check_name,
        scope_period,
        status,
        0 as compared_rows,
        1 as findings
    from findings
),

scoped as (
    select
        'all' as scope,
        cast(null as {{ dbt.type_string() }}) as scope_period,
        check_name,
        status,
        compared_rows,
        findings
    from rows_and_findings
    union all
    select
        'month' as scope,
        scope_period,
        check_name,
        status,
        compared_rows,
        findings
    from rows_and_findings
    where scope_period is not null
)

select
    {{ dbt.concat([
        'scoped.scope', "'|'", "coalesce(scoped.scope_period, '')", "'|'", 'scoped.check_name', "'|'", 'scoped.status'
    ]) }} as status_key,
    scoped.scope,
    scoped.scope_period,
    scoped.check_name,
    scoped.status,
    scoped.status not in {{ ok_statuses() }} as is_finding,
    cast(sum(scoped.compared_rows) as {{ dbt.type_bigint() }}) as compared_rows,
    cast(sum(scoped.findings) as {{ dbt.type_bigint() }}) as findings,
    as_of.as_of
from scoped
cross join as_of
group by scoped.scope, scoped.scope_period, scoped.check_name, scoped.status, as_of.as_of
