-- Payment events finance follows: one row per Stripe refund, dispute (including card-issuer
-- inquiries), failed charge, and Stripe invoice left unpaid (open or uncollectible), with the
-- account and billing period of the invoice it concerns (through the charge's Stripe invoice;
-- NULL when that is unknown, e.g. a refund whose charge never arrived). Statuses are the latest
-- Stripe knows (as of the last Stripe pull), so is_open and is_at_risk describe now:
--   refund          open while pending; never at risk (the money is already going back)
--   dispute         open in warning_needs_response, warning_under_review, needs_response,
--                   under_review; at risk while open
--   failed_payment  open while its invoice is not paid; at risk while open
--   unpaid_invoice  open; at risk once stripe_invoice_grace_days have passed since it was
--                   created (before that a charge is still expected), or when uncollectible
-- amount_minor: the refund, the disputed amount, the failed charge, the invoice's amount due.
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
        refunds.refund_status = 'pending' as is_open,
        false as is_at_risk
    from refunds
    left join charge_context
        on refunds.charge_id = charge_context.charge_id
    union all
    select
        'dispute' as event_type,
        disputes.dispute_id as object_id,
        disputes.charge_id,
        charge_context.stripe_invoice_id,
        charge_context.account_id,
        charge_context.period,
        disputes.currency,
        disputes.amount_minor,
        disputes.dispute_status as event_status,
        disputes.created_at,
        disputes.dispute_status in (
            'warning_needs_response', 'warning_under_review', 'needs_response', 'under_review'
        ) as is_open,
        disputes.dispute_status in (
            'warning_needs_response', 'warning_under_review', 'needs_response', 'under_review'
        ) as is_at_risk
    from disputes
    left join charge_context
        on disputes.charge_id = charge_context.charge_id
    union all
    select
        'failed_payment' as event_type,
        charges.charge_id as object_id,
        charges.charge_id,
        charge_context.stripe_invoice_id,
        charge_context.account_id,
        charge_context.period,
        charges.currency,
        charges.amount_minor,
        charges.charge_status as event_status,
        charges.created_at,
        coalesce(charge_context.invoice_status, 'open') not in ('paid', 'void') as is_open,
        coalesce(charge_context.invoice_status, 'open') not in ('paid', 'void') as is_at_risk
    from charges
    inner join charge_context
        on charges.charge_id = charge_context.charge_id
    where charges.charge_status = 'failed'
    union all
    select
        'unpaid_invoice' as event_type,
        stripe_invoices.invoice_id as object_id,
        cast(null as {{ dbt.type_string() }}) as charge_id,
        stripe_invoices.invoice_id as stripe_invoice_id,
        stripe_invoices.account_id,
        stripe_invoices.period,
        stripe_invoices.currency,
        stripe_invoices.total_minor - stripe_invoices.amount_paid_minor as amount_minor,
        stripe_invoices.invoice_status as event_status,
        stripe_invoices.created_at,
        true as is_open,
        (
            stripe_invoices.invoice_status = 'uncollectible'
            or {{ dbt.dateadd('day', var('stripe_invoice_grace_days'), 'stripe_invoices.created_at') }}
            <= as_of.as_of
        ) as is_at_risk
    from stripe_invoices
    cross join as_of
    where stripe_invoices.invoice_status in ('open', 'uncollectible')
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
    is_open,
    is_at_risk
from events
