-- Receivables aging per snapshot day, currency and bucket (from fin_receivables_aging): invoice
-- count and open amount, every bucket present (0 when empty) for each currency with an invoice
-- dated by the snapshot day, so tables and charts keep their shape. Snapshot days as in
-- fin_receivables_aging (macro aging_snapshot_ctes): each complete billing month's last day and
-- the latest report day. bucket_order (the buckets of fin_receivables_aging): current (not yet due), 1_30, 31_60,
-- 61_90, 91_plus days past due, credit_balance (overpaid invoices, negative).
with

calendar as (
    select * from {{ ref('fin_calendar') }}
),

aging as (
    select * from {{ ref('fin_receivables_aging') }}
),

invoices as (
    select * from {{ ref('fct_invoices') }}
    where state <> 'void'
),

{{ aging_snapshot_ctes('calendar') }},

currencies as (
    select
        currency,
        min({{ invoice_date_of('period_end') }}) as first_invoice_date
    from invoices
    group by currency
),

buckets as (
    select
        'current' as aging_bucket,
        1 as bucket_order
    union all
    select
        '1_30' as aging_bucket,
        2 as bucket_order
    union all
    select
        '31_60' as aging_bucket,
        3 as bucket_order
    union all
    select
        '61_90' as aging_bucket,
        4 as bucket_order
    union all
    select
        '91_plus' as aging_bucket,
        5 as bucket_order
    union all
    select
        'credit_balance' as aging_bucket,
        6 as bucket_order
),

totals as (
    select
        snapshot_day,
        currency,
        aging_bucket,
        count(*) as invoice_count,
        sum(open_minor) as open_minor
    from aging
    group by snapshot_day, currency, aging_bucket
)

select
    {{ dbt.concat([
        format_day('snapshots.snapshot_day'), "'|'", 'currencies.currency', "'|'", 'buckets.aging_bucket'
    ]) }} as aging_bucket_key,
    snapshots.snapshot_day,
    snapshots.snapshot_period,
    snapshots.is_month_end,
    snapshots.is_latest,
    currencies.currency,
    buckets.aging_bucket,
    buckets.bucket_order,
    cast(coalesce(totals.invoice_count, 0) as {{ dbt.type_bigint() }}) as invoice_count,
    cast(coalesce(totals.open_minor, 0) as {{ dbt.type_bigint() }}) as open_minor
from snapshots
inner join currencies
    on snapshots.snapshot_day >= currencies.first_invoice_date
cross join buckets
left join totals
    on
        snapshots.snapshot_day = totals.snapshot_day
        and currencies.currency = totals.currency
        and buckets.aging_bucket = totals.aging_bucket
