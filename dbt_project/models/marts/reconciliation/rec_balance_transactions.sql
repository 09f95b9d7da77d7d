-- Money after the invoice: one row per succeeded Stripe charge and refund against its balance
-- transaction (it must exist, in the same currency, for the same amount - negative for a refund
-- - with net = amount - fee), and one row per paid payout against the balance it swept: the net
-- of every balance transaction created before it (Stripe's automatic payouts pay out the whole
-- available balance; earlier payouts are balance transactions too, so they are netted out).
-- Status: matched, drift, missing_in_stripe (no balance transaction), or explained.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

bts as (
    select * from {{ ref('stg_stripe__balance_transactions') }}
),

charge_objects as (
    select
        'charge' as object_type,
        charge_id as object_id,
        customer_id,
        currency,
        amount_minor as expected_amount_minor
    from {{ ref('int_stripe_charges_latest') }}
    where charge_status = 'succeeded'
),

refund_objects as (
    select
        'refund' as object_type,
        refunds.refund_id as object_id,
        charges.customer_id,
        refunds.currency,
        -refunds.amount_minor as expected_amount_minor
    from {{ ref('int_stripe_refunds_latest') }} as refunds
    left join {{ ref('int_stripe_charges_latest') }} as charges
        on refunds.charge_id = charges.charge_id
    where refunds.refund_status = 'succeeded'
),

money_objects as (
    select * from charge_objects
    union all
    select * from refund_objects
),

object_rows as (
    select
        money_objects.object_type,
        money_objects.object_id,
        customers.account_id,
        money_objects.currency,
        money_objects.expected_amount_minor,
        bts.balance_transaction_id,
        bts.amount_minor,
        bts.fee_minor,
        bts.net_minor,
        case
            when bts.balance_transaction_id is null then 'missing_in_stripe'
            when bts.currency <> money_objects.currency then 'drift'
            when bts.amount_minor <> money_objects.expected_amount_minor then 'drift'
            when bts.net_minor <> bts.amount_minor - bts.fee_minor then 'drift'
            else 'matched'
        end as classified_status
    from money_objects
    left join bts
        on money_objects.object_id = bts.source_id
    left join {{ ref('int_stripe_customers_latest') }} as customers
        on money_objects.customer_id = customers.customer_id
),

payouts as (
    select * from {{ ref('stg_stripe__payouts') }}
    where payout_status = 'paid'
),

payout_rows as (
    select
        'payout' as object_type,
        payouts.payout_id as object_id,
        cast(null as {{ dbt.type_string() }}) as account_id,
        payouts.currency,
        coalesce(sum(bts.net_minor), 0) as expected_amount_minor,
        cast(null as {{ dbt.type_string() }}) as balance_transaction_id,
        payouts.amount_minor,
        cast(0 as {{ dbt.type_bigint() }}) as fee_minor,
        payouts.amount_minor as net_minor,
        case
            when payouts.amount_minor = coalesce(sum(bts.net_minor), 0) then 'matched'
            else 'drift'
        end as classified_status
    from payouts
    left join bts
        on
            payouts.currency = bts.currency
            and payouts.created_at > bts.created_at
    group by payouts.payout_id, payouts.currency, payouts.amount_minor
),

all_rows as (
    select * from object_rows
    union all
    select * from payout_rows
),

explained as (
    select
        all_rows.*,
        {{ explanation_for('balance_transactions', {'object_id': 'all_rows.object_id'}, 'as_of.as_of') }}
            as explanation_id
    from all_rows
    cross join as_of
)

select
    {{ dbt.concat(["object_type", "'|'", "object_id"]) }} as balance_rec_id,
    object_type,
    object_id,
    account_id,
    currency,
    balance_transaction_id,
    expected_amount_minor,
    amount_minor,
    fee_minor,
    net_minor,
    abs(coalesce(amount_minor, 0) - expected_amount_minor) as abs_diff,
    classified_status,
    explanation_id,
    {{ explained_status('classified_status', 'explanation_id') }} as status
from explained
