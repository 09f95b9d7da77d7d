-- One row per account and billing period that ended by as_of: the computed invoice (the
-- issued, not voided one for a locked period, else the current draft) against the Stripe invoice
-- carrying metadata account_id and period (latest extracted version of each invoice).
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

locks as (
    select * from {{ ref('stg_ledger__period_locks') }}
),

issued as (
    select
        issued_invoices.invoice_id,
        issued_invoices.account_id,
        issued_invoices.period,
        issued_invoices.currency,
        issued_invoices.total_minor,
        'issued' as computed_source
    from {{ ref('stg_ledger__issued_invoices') }} as issued_invoices
    inner join locks
        on issued_invoices.period = locks.period
    -- a voided invoice is owed by nobody: a Stripe invoice still standing for it is a finding
    -- (missing_in_computed); one Stripe voided too is ignored like any void Stripe invoice
    where issued_invoices.voided_at is null
),

drafts as (
    select
        invoice_id,
        account_id,
        period,
        currency,
        total_minor,
        'current' as computed_source
    from {{ ref('fct_invoices') }}
    where not is_period_locked
),

computed as (
    select * from issued
    union all
    select * from drafts
),

stripe as (
    select
        account_id,
        period,
        count(*) as stripe_invoice_count,
        min(invoice_id) as stripe_invoice_id,
        min(currency) as stripe_currency,
        sum(total_minor) as stripe_total_minor
    from {{ ref('int_stripe_invoices_latest') }}
    where
        account_id is not null
        -- metadata.period must read 'YYYY-MM'; anything else cannot be matched to a period
        and period like '____-__'
        and coalesce(invoice_status, '') not in ({{ quoted_list(var('stripe_ignored_invoice_statuses')) }})
    group by account_id, period
),

joined as (
    select
        coalesce(computed.account_id, stripe.account_id) as account_id,
        coalesce(computed.period, stripe.period) as period,
        computed.invoice_id as computed_invoice_id,
        computed.computed_source,
        computed.currency as computed_currency,
        computed.total_minor as computed_total_minor,
        stripe.stripe_invoice_id,
        coalesce(stripe.stripe_invoice_count, 0) as stripe_invoice_count,
        stripe.stripe_currency,
        stripe.stripe_total_minor
    from computed
    full outer join stripe
        on
            computed.account_id = stripe.account_id
            and computed.period = stripe.period
),

bounded as (
    select
        joined.*,
        {{ period_start_of('joined.period') }} as period_start,
        cast({{ dbt.dateadd('month', 1, period_start_of('joined.period')) }} as date) as period_end,
        as_of.as_of
    from joined
    cross join as_of
),

classified as (
    select
        {{ dbt.concat(["account_id", "'|'", "period"]) }} as invoice_total_id,
        account_id,
        period,
        period_start,
        period_end,
        computed_invoice_id,
        computed_source,
        computed_currency,
        computed_total_minor,
        stripe_invoice_id,
        stripe_invoice_count,
        stripe_currency,
        stripe_total_minor,
        case
            when computed_total_minor is not null and stripe_total_minor is not null
                then abs(computed_total_minor - stripe_total_minor)
        end as abs_diff,
        case
            when stripe_invoice_count > 1 then 'duplicate_in_stripe'
            when computed_invoice_id is null then 'missing_in_computed'
            when stripe_invoice_count = 0
                then
                    case
                        when as_of < {{ dbt.dateadd('day', var('stripe_invoice_grace_days'), 'period_end') }}
                            then 'late_pending'
                        else 'missing_in_stripe'
                    end
            when
                computed_total_minor = stripe_total_minor
                and computed_currency = stripe_currency
                then 'matched'
            else 'drift'
        end as classified_status
    from bounded
    where period_end <= as_of
),

explained as (
    select
        classified.*,
        {{ explanation_for('invoice_totals', {
            'account_id': "classified.account_id",
            'period': "classified.period"
        }) }} as explanation_id
    from classified
)

select
    explained.*,
    {{ explained_status('classified_status', 'explanation_id') }} as status
from explained
