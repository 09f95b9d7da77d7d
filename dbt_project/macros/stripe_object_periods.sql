{#
    The billing month ('YYYY-MM') each Stripe object a reconciliation row is about was created
    in: one row per charge, refund and payout (object_id, created_period). The finance reports
    scope rec_payments and rec_balance_transactions rows (which have no period or day) by it
    (fin_reconciliation_status, fin_reconciliation_findings).
#}
{% macro stripe_object_periods() -%}
    select
        charge_id as object_id,
        {{ format_period('created_at') }} as created_period
    from {{ ref('int_stripe_charges_latest') }}
    union all
    select
        refund_id as object_id,
        {{ format_period('created_at') }} as created_period
    from {{ ref('int_stripe_refunds_latest') }}
    union all
    select
        payout_id as object_id,
        {{ format_period('min(created_at)') }} as created_period
    from {{ ref('stg_stripe__payouts') }}
    group by payout_id
{%- endmacro %}
