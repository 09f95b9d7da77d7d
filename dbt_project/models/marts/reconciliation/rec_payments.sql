-- One row per Stripe refund (its charge must exist) and per succeeded Stripe charge that
-- pays an invoice (the invoice must exist and its amount_paid must equal the charge).
with

charges as (
    select * from {{ ref('int_stripe_charges_latest') }}
),

refunds as (
    select * from {{ ref('int_stripe_refunds_latest') }}
),

invoices as (
    select * from {{ ref('int_stripe_invoices_latest') }}
),

refund_rows as (
    select
        'refund' as object_type,
        refunds.refund_id as object_id,
        refunds.charge_id as related_object_id,
        invoices.account_id,
        refunds.currency,
        refunds.amount_minor,
        charges.amount_minor as expected_amount_minor,
        case
            when charges.charge_id is null then 'missing_in_stripe'
            when refunds.currency <> charges.currency then 'drift'
            when refunds.amount_minor > charges.amount_minor then 'drift'
            else 'matched'
        end as classified_status
    from refunds
    left join charges
        on refunds.charge_id = charges.charge_id
    left join invoices
        on charges.invoice_id = invoices.invoice_id
),

charge_rows as (
    select
        'charge' as object_type,
        charges.charge_id as object_id,
        charges.invoice_id as related_object_id,
        invoices.account_id,
        charges.currency,
        charges.amount_minor,
        invoices.amount_paid_minor as expected_amount_minor,
        case
            when invoices.invoice_id is null then 'missing_in_stripe'
            when charges.currency <> invoices.currency then 'drift'
            when charges.amount_minor <> invoices.amount_paid_minor then 'drift'
            else 'matched'
        end as classified_status
    from charges
    left join invoices
        on charges.invoice_id = invoices.invoice_id
    where
        charges.invoice_id is not null
        and charges.charge_status = 'succeeded'
),

classified as (
    select * from refund_rows
    union all
    select * from charge_rows
),

explained as (
    select
        classified.*,
        {{ explanation_for('payments', {
            'object_id': "classified.object_id"
        }) }} as explanation_id
    from classified
)

select
    explained.*,
    {{ explained_status('classified_status', 'explanation_id') }} as status
from explained
