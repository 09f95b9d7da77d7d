-- Open receivables per invoice at the end of each complete billing month and of the latest
-- report day (DECISIONLOG.md, "Receivables aging"): one row per snapshot day and invoice whose
-- open amount is not 0. An invoice (fct_invoices, not void) is dated its billing period's last
-- day, like its journal entry, and due var('payment_terms_days') days later; it is open for its
-- total less the succeeded Stripe charges and issued Stripe credit notes on the Stripe invoice
-- of the same account and period, created by the end of the snapshot day. Aged by days past
-- due (snapshot day - due date, 0 until it is due): current (not yet due), 1_30, 31_60, 61_90,
-- 91_plus; an overpaid invoice (open < 0) is credit_balance, not aged. age_days: days since the
-- invoice date, for information.
with

calendar as (
    select * from {{ ref('fin_calendar') }}
),

invoices as (
    select * from {{ ref('fct_invoices') }}
    where state <> 'void'
),

stripe_invoices as (
    select * from {{ ref('int_stripe_invoices_latest') }}
),

charges as (
    select * from {{ ref('int_stripe_charges_latest') }}
    where charge_status = 'succeeded'
),

credit_notes as (
    select * from {{ ref('int_stripe_credit_notes_latest') }}
    where credit_note_status <> 'void'
),

{{ aging_snapshot_ctes('calendar') }},

dated_invoices as (
    select
        invoice_id,
        account_id,
        period,
        currency,
        total_minor,
        {{ invoice_date_of('period_end') }} as invoice_date,
        {{ due_date_of(invoice_date_of('period_end')) }} as due_date
    from invoices
),

-- what settles a Stripe invoice: its succeeded charges (collected) and credit notes (credited)
settlement_events as (
    select
        invoice_id,
        created_at,
        amount_minor,
        0 as credited_minor
    from charges
    union all
    select
        invoice_id,
        created_at,
        0 as amount_minor,
        amount_minor as credited_minor
    from credit_notes
),

settlements as (
    select
        stripe_invoices.account_id,
        stripe_invoices.period,
        settlement_events.created_at,
        settlement_events.amount_minor,
        settlement_events.credited_minor
    from settlement_events
    inner join stripe_invoices
        on settlement_events.invoice_id = stripe_invoices.invoice_id
),

positions as (
    select
        snapshots.snapshot_day,
        snapshots.snapshot_period,
        snapshots.is_month_end,
        snapshots.is_latest,
        dated_invoices.invoice_id,
        dated_invoices.account_id,
        dated_invoices.period,
        dated_invoices.currency,
        dated_invoices.invoice_date,
        dated_invoices.due_date,
        dated_invoices.total_minor,
        coalesce(sum(settlements.amount_minor), 0) as collected_minor,
        coalesce(sum(settlements.credited_minor), 0) as credited_minor
    from snapshots
    inner join dated_invoices
        on snapshots.snapshot_day >= dated_invoices.invoice_date
    left join settlements
        on
            dated_invoices.account_id = settlements.account_id
            and dated_invoices.period = settlements.period
            and settlements.created_at < {{ dbt.dateadd('day', 1, 'snapshots.snapshot_day') }}
    group by
        snapshots.snapshot_day,
        snapshots.snapshot_period,
        snapshots.is_month_end,
        snapshots.is_latest,
        dated_invoices.invoice_id,
        dated_invoices.account_id,
        dated_invoices.period,
        dated_invoices.currency,
        dated_invoices.invoice_date,
        dated_invoices.due_date,
        dated_invoices.total_minor
),

aged as (
    select
        positions.*,
        positions.total_minor - positions.collected_minor - positions.credited_minor as open_minor,
        {{ dbt.datediff('positions.invoice_date', 'positions.snapshot_day', 'day') }} as age_days,  -- noqa: LT05
        case
            when positions.snapshot_day <= positions.due_date then 0
            else {{ dbt.datediff('positions.due_date', 'positions.snapshot_day', 'day') }}  -- noqa: LT05
        end as days_past_due
    from positions
)

select
    {{ dbt.concat([format_day('snapshot_day'), "'|'", 'invoice_id']) }} as aging_key,
    snapshot_day,
    snapshot_period,
    is_month_end,
    is_latest,
    invoice_id,
    account_id,
    period,
    currency,
    invoice_date,
    due_date,
    cast(total_minor as {{ dbt.type_bigint() }}) as total_minor,
    cast(collected_minor as {{ dbt.type_bigint() }}) as collected_minor,
    cast(credited_minor as {{ dbt.type_bigint() }}) as credited_minor,
    cast(open_minor as {{ dbt.type_bigint() }}) as open_minor,
    cast(age_days as {{ dbt.type_bigint() }}) as age_days,
    cast(days_past_due as {{ dbt.type_bigint() }}) as days_past_due,
    case
        when open_minor < 0 then 'credit_balance'
        when days_past_due = 0 then 'current'
        when days_past_due <= 30 then '1_30'
        when days_past_due <= 60 then '31_60'
        when days_past_due <= 90 then '61_90'
        else '91_plus'
    end as aging_bucket
from aged
where open_minor <> 0
