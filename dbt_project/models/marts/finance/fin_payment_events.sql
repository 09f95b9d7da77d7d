-- Payment events finance follows: one row per Stripe refund, dispute (including card-issuer
-- inquiries), failed charge, and Stripe invoice left unpaid (open or uncollectible), with the
-- account and billing period of the invoice it concerns (through the charge's Stripe invoice;
-- NULL when that is unknown, e.g. a refund whose charge never arrived). Statuses are the latest
-- Stripe knows (as of the last Stripe pull), so is_open and is_at_risk describe now.
--
-- Money at risk counts each Stripe invoice once, at its amount due, and each disputed charge
-- once (at_risk_minor; summed, the money at risk, nothing twice):
--   unpaid_invoice  open or uncollectible with an amount due > 0; at risk when uncollectible,
--                   when a charge for it failed (however many retries), or once
--                   stripe_invoice_grace_days have passed since it was created (before that a
--                   charge is still expected); at_risk_reason says which, failed_attempts how
--                   many charges for it failed
--   dispute         open in warning_needs_response, warning_under_review, needs_response,
--                   under_review; at risk while open, the latest open dispute of its charge only
--                   (the disputed money is the charge's, once)
--   failed_payment  a failed attempt: open while its Stripe invoice is unpaid (draft, open,
--                   uncollectible); never at risk itself, its invoice is (a failed charge with
--                   no invoice, or whose invoice has not arrived, is neither open nor at risk)
--   refund          open while pending; never at risk (the money is already going back)
-- amount_minor: the refund, the disputed amount, the failed charge, the invoice's amount due.
-- is_counted: whether amount_minor counts in a month's total of its kind
-- (fin_payment_events_summary): succeeded refunds only (as the flash's refunded); each disputed
-- charge once a month (its latest dispute of the month); each Stripe invoice's failed attempts
-- once a month (the latest; a failed charge with no invoice counts itself); unpaid invoices.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

charges as (
    select * from {{ ref('int_stripe_charges_latest') }}
),

refunds as (
    select * from {{ ref('int_stripe_refunds_latest') }}
),

disputes as (
    select * from {{ ref('int_stripe_disputes_latest') }}
),

stripe_invoices as (
    select * from {{ ref('int_stripe_invoices_latest') }}
),

accounts as (
    select * from {{ ref('dim_accounts') }}
),

charge_context as (
    select
        charges.charge_id,
        charges.invoice_id as stripe_invoice_id,
        coalesce(stripe_invoices.account_id, accounts.account_id) as account_id,
        stripe_invoices.period,
        stripe_invoices.invoice_status
    from charges
    left join stripe_invoices
        on charges.invoice_id = stripe_invoices.invoice_id
    left join accounts
        on charges.customer_id = accounts.stripe_customer_id
),

failed_charges as (
    select
        charges.charge_id,
        charges.currency,
        charges.amount_minor,
        charges.charge_status,
        charges.created_at,
        charge_context.stripe_invoice_id,
        charge_context.account_id,
        charge_context.period,
        charge_context.invoice_status
    from charges
    inner join charge_context
        on charges.charge_id = charge_context.charge_id
    where charges.charge_status = 'failed'
),

invoice_failures as (
    select
        stripe_invoice_id,
        count(*) as failed_attempts
    from failed_charges
    where stripe_invoice_id is not null
    group by stripe_invoice_id
),

open_disputes as (
    select
        disputes.*,
        disputes.dispute_status in (
            'warning_needs_response', 'warning_under_review', 'needs_response', 'under_review'
        ) as is_open
    from disputes
),

ranked_disputes as (
    select
        open_disputes.*,
        row_number() over (
            partition by open_disputes.charge_id
            order by
                case when open_disputes.is_open then 0 else 1 end,
                open_disputes.created_at desc,
                open_disputes.dispute_id desc
        ) as charge_rank,
        row_number() over (
            partition by open_disputes.charge_id, {{ format_period('open_disputes.created_at') }}
            order by open_disputes.created_at desc, open_disputes.dispute_id desc
        ) as month_rank
    from open_disputes
),

ranked_failures as (
    select
        failed_charges.*,
        row_number() over (
            partition by
                coalesce(failed_charges.stripe_invoice_id, failed_charges.charge_id),
                {{ format_period('failed_charges.created_at') }}
            order by failed_charges.created_at desc, failed_charges.charge_id desc
        ) as month_rank
    from failed_charges
),

unpaid_invoices as (
    select
        stripe_invoices.*,
        stripe_invoices.total_minor - stripe_invoices.amount_paid_minor as amount_due_minor,
        coalesce(invoice_failures.failed_attempts, 0) as failed_attempts,
        case
            when stripe_invoices.total_minor - stripe_invoices.amount_paid_minor <= 0 then null
            when stripe_invoices.invoice_status = 'uncollectible' then 'uncollectible'
            when invoice_failures.failed_attempts > 0 then 'failed_payment'
            when
                {{ dbt.dateadd('day', var('stripe_invoice_grace_days'), 'stripe_invoices.created_at') }}
                <= as_of.as_of
                then 'past_grace_days'
        end as at_risk_reason
    from stripe_invoices
    cross join as_of
    left join invoice_failures
        on stripe_invoices.invoice_id = invoice_failures.stripe_invoice_id
    where stripe_invoices.invoice_status in ('open', 'uncollectible')
),

events as (
    select
        'refund' as event_type,
        refunds.refund_id as object_id,
        refunds.charge_id,
        charge_context.stripe_invoice_id,
        charge_context.account_id,
        charge_context.period,
        refunds.currency,
        refunds.amount_minor,
        refunds.refund_status as event_status,
        refunds.created_at,
        refunds.refund_status = 'succeeded' as is_counted,
        refunds.refund_status = 'pending' as is_open,
        false as is_at_risk,
        cast(null as {{ dbt.type_string() }}) as at_risk_reason,
        cast(null as {{ dbt.type_bigint() }}) as failed_attempts
    from refunds
    left join charge_context
        on refunds.charge_id = charge_context.charge_id
    union all
    select
        'dispute' as event_type,
        ranked_disputes.dispute_id as object_id,
        ranked_disputes.charge_id,
        charge_context.stripe_invoice_id,
        charge_context.account_id,
        charge_context.period,
        ranked_disputes.currency,
        ranked_disputes.amount_minor,
        ranked_disputes.dispute_status as event_status,
        ranked_disputes.created_at,
        ranked_disputes.month_rank = 1 as is_counted,
        ranked_disputes.is_open,
        ranked_disputes.is_open and ranked_disputes.charge_rank = 1 as is_at_risk,
        case
            when ranked_disputes.is_open and ranked_disputes.charge_rank = 1 then 'open_dispute'
        end as at_risk_reason,
        cast(null as {{ dbt.type_bigint() }}) as failed_attempts
    from ranked_disputes
    left join charge_context
        on ranked_disputes.charge_id = charge_context.charge_id
    union all
    select
        'failed_payment' as event_type,
        ranked_failures.charge_id as object_id,
        ranked_failures.charge_id,
        ranked_failures.stripe_invoice_id,
        ranked_failures.account_id,
        ranked_failures.period,
        ranked_failures.currency,
        ranked_failures.amount_minor,
        ranked_failures.charge_status as event_status,
        ranked_failures.created_at,
        ranked_failures.month_rank = 1 as is_counted,
        coalesce(ranked_failures.invoice_status in ('draft', 'open', 'uncollectible'), false) as is_open,
        false as is_at_risk,
        cast(null as {{ dbt.type_string() }}) as at_risk_reason,
        invoice_failures.failed_attempts
    from ranked_failures
    left join invoice_failures
        on ranked_failures.stripe_invoice_id = invoice_failures.stripe_invoice_id
    union all
    select
        'unpaid_invoice' as event_type,
        unpaid_invoices.invoice_id as object_id,
        cast(null as {{ dbt.type_string() }}) as charge_id,
        unpaid_invoices.invoice_id as stripe_invoice_id,
        unpaid_invoices.account_id,
        unpaid_invoices.period,
        unpaid_invoices.currency,
        unpaid_invoices.amount_due_minor as amount_minor,
        unpaid_invoices.invoice_status as event_status,
        unpaid_invoices.created_at,
        true as is_counted,
        true as is_open,
        unpaid_invoices.at_risk_reason is not null as is_at_risk,
        unpaid_invoices.at_risk_reason,
        unpaid_invoices.failed_attempts
    from unpaid_invoices
)

select
    {{ dbt.concat(['event_type', "'|'", 'object_id']) }} as event_key,
    event_type,
    object_id,
    charge_id,
    stripe_invoice_id,
    account_id,
    period,
    currency,
    cast(amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
    event_status,
    created_at,
    cast(created_at as date) as event_day,
    {{ format_period('created_at') }} as event_period,
    is_counted,
    is_open,
    is_at_risk,
    cast(case when is_at_risk then amount_minor else 0 end as {{ dbt.type_bigint() }}) as at_risk_minor,
    at_risk_reason,
    cast(failed_attempts as {{ dbt.type_bigint() }}) as failed_attempts
from events
