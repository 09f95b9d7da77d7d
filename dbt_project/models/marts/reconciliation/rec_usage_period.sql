-- noqa: disable=RF03
-- One row per account, data category and billing period that ended by as_of: the four counts of
-- the same usage side by side - what metering accepted, what the billing system counted, what
-- meterline rated (metered and billable), what the computed invoice billed and what the Stripe
-- invoice billed (Stripe lines mapped to categories through their price or product metadata) -
-- with absolute and relative differences and one status (DESIGN.md's vocabulary), in this order:
--   duplicate_in_billing   a day of the period has two counter rows at its latest version
--   missing_in_<source>    metering, billing or (its period invoiced) Stripe has no count at all
--   drift                  metering vs billing beyond the category's tolerance, meterline's
--                          metered count vs metering (exact), or invoiced vs Stripe (exact)
--   late_pending           the period touches the late-data window, or the Stripe invoice is
--                          still inside its grace days
--   within_tolerance / matched
-- An accepted explanation on file turns a finding status into 'explained'.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

periods as (
    select
        periods.period,
        periods.period_start,
        periods.period_end
    from {{ ref('int_billing_periods') }} as periods
    cross join as_of
    where periods.period_end <= as_of.as_of
),

metering as (
    select
        account_id,
        category,
        {{ format_period('usage_day') }} as period,
        sum(quantity) as metering_quantity
    from {{ ref('int_metering_usage_current') }}
    where outcome = 'accepted'
    group by account_id, category, {{ format_period('usage_day') }}
),

billing as (
    select
        account_id,
        category,
        {{ format_period('usage_day') }} as period,
        sum(quantity) as billing_quantity,
        max(rows_at_latest) as billing_rows_at_latest
    from {{ ref('int_billing_usage_counters_latest') }}
    group by account_id, category, {{ format_period('usage_day') }}
),

rated as (
    select
        account_id,
        category,
        period,
        sum(metered_quantity) as computed_metered_quantity,
        sum(billable_quantity) as computed_billable_quantity
    from {{ ref('fct_billable_usage') }}
    group by account_id, category, period
),

invoiced as (
    select
        account_id,
        category,
        period,
        computed_quantity as invoiced_quantity,
        stripe_quantity
    from {{ ref('rec_invoice_lines') }}
    -- data categories only: fees, credits and discounts are not usage
    where category in (select categories.category from {{ ref('categories') }} as categories)
),

invoices as (
    select
        account_id,
        period,
        classified_status as invoice_status
    from {{ ref('rec_invoice_totals') }}
),

keys as (
    select
        account_id,
        category,
        period
    from metering
    union
    select
        account_id,
        category,
        period
    from billing
    union
    select
        account_id,
        category,
        period
    from rated
    union
    select
        account_id,
        category,
        period
    from invoiced
),

joined as (
    select
        keys.account_id,
        keys.category,
        keys.period,
        periods.period_end,
        metering.metering_quantity,
        billing.billing_quantity,
        coalesce(billing.billing_rows_at_latest, 0) as billing_rows_at_latest,
        rated.computed_metered_quantity,
        rated.computed_billable_quantity,
        invoiced.invoiced_quantity,
        invoiced.stripe_quantity,
        invoices.invoice_status,
        periods.period_end > as_of.late_window_start as is_in_late_window,
        as_of.as_of
    from keys
    inner join periods
        on keys.period = periods.period
    cross join as_of
    left join metering
        on
            keys.account_id = metering.account_id
            and keys.category = metering.category
            and keys.period = metering.period
    left join billing
        on
            keys.account_id = billing.account_id
            and keys.category = billing.category
            and keys.period = billing.period
    left join rated
        on
            keys.account_id = rated.account_id
            and keys.category = rated.category
            and keys.period = rated.period
    left join invoiced
        on
            keys.account_id = invoiced.account_id
            and keys.category = invoiced.category
            and keys.period = invoiced.period
    left join invoices
        on
            keys.account_id = invoices.account_id
            and keys.period = invoices.period
),

classified as (
    select
        joined.*,
        case
            when billing_rows_at_latest > 1 then 'duplicate_in_billing'
            when (metering_quantity is null or billing_quantity is null) and is_in_late_window
                then 'late_pending'
            when metering_quantity is null then 'missing_in_metering'
            when billing_quantity is null then 'missing_in_billing'
            when not {{ within_usage_tolerance('category', 'metering_quantity', 'billing_quantity') }}
                then case when is_in_late_window then 'late_pending' else 'drift' end
            when coalesce(computed_metered_quantity, 0) <> metering_quantity then 'drift'
            when invoice_status = 'late_pending' then 'late_pending'
            when invoice_status = 'missing_in_stripe' then 'missing_in_stripe'
            when invoiced_quantity is not null and stripe_quantity is null then 'missing_in_stripe'
            when invoiced_quantity is null and stripe_quantity is not null then 'missing_in_computed'
            when invoiced_quantity <> stripe_quantity then 'drift'
            when metering_quantity = billing_quantity then 'matched'
            else 'within_tolerance'
        end as classified_status,
        {{ explanation_for('usage_period', {
            'account_id': 'joined.account_id', 'category': 'joined.category', 'period': 'joined.period'},
            'joined.as_of') }}
            as explanation_id
    from joined
)

select
    {{ dbt.concat(["account_id", "'|'", "category", "'|'", "period"]) }} as usage_period_id,
    account_id,
    category,
    period,
    metering_quantity,
    billing_quantity,
    billing_rows_at_latest,
    computed_metered_quantity,
    computed_billable_quantity,
    invoiced_quantity,
    stripe_quantity,
    abs(metering_quantity - billing_quantity) as metering_billing_abs_diff,
    {{ relative_difference('metering_quantity', 'billing_quantity') }} as metering_billing_rel_diff,
    abs(invoiced_quantity - stripe_quantity) as invoiced_stripe_abs_diff,
    {{ relative_difference('invoiced_quantity', 'stripe_quantity') }} as invoiced_stripe_rel_diff,
    is_in_late_window,
    invoice_status,
    classified_status,
    explanation_id,
    {{ explained_status('classified_status', 'explanation_id') }} as status
from classified
