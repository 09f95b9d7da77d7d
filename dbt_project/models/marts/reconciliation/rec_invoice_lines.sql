-- One row per account, billing period and invoice line category, for the account-periods
-- that have a computed invoice and exactly one Stripe invoice (see rec_invoice_totals).
with

pairs as (
    select
        account_id,
        period,
        computed_source,
        stripe_invoice_id
    from {{ ref('rec_invoice_totals') }}
    where
        computed_invoice_id is not null
        and stripe_invoice_count = 1
),

issued_lines as (
    select
        account_id,
        period,
        category,
        quantity,
        amount_minor
    from {{ ref('stg_ledger__issued_invoice_lines') }}
),

current_lines as (
    select
        account_id,
        period,
        category,
        quantity,
        amount_minor
    from {{ ref('fct_invoice_lines') }}
),

computed_line_rows as (
    select
        pairs.account_id,
        pairs.period,
        issued_lines.category,
        issued_lines.quantity,
        issued_lines.amount_minor
    from pairs
    inner join issued_lines
        on
            pairs.account_id = issued_lines.account_id
            and pairs.period = issued_lines.period
    where pairs.computed_source = 'issued'
    union all
    select
        pairs.account_id,
        pairs.period,
        current_lines.category,
        current_lines.quantity,
        current_lines.amount_minor
    from pairs
    inner join current_lines
        on
            pairs.account_id = current_lines.account_id
            and pairs.period = current_lines.period
    where pairs.computed_source = 'current'
),

computed_lines as (
    -- an invoice may hold several lines of one category (usage, reserved, adjustments)
    select
        account_id,
        period,
        category,
        sum(quantity) as quantity,
        sum(amount_minor) as amount_minor
    from computed_line_rows
    group by account_id, period, category
),

stripe_lines as (
    select
        pairs.account_id,
        pairs.period,
        stripe_invoice_lines.category,
        sum(stripe_invoice_lines.quantity) as quantity,
        sum(stripe_invoice_lines.amount_minor) as amount_minor
    from pairs
    inner join {{ ref('int_stripe_invoice_lines_latest') }} as stripe_invoice_lines
        on pairs.stripe_invoice_id = stripe_invoice_lines.invoice_id
    group by pairs.account_id, pairs.period, stripe_invoice_lines.category
),

joined as (
    select
        coalesce(computed_lines.account_id, stripe_lines.account_id) as account_id,
        coalesce(computed_lines.period, stripe_lines.period) as period,
        coalesce(computed_lines.category, stripe_lines.category) as category,
        computed_lines.quantity as computed_quantity,
        stripe_lines.quantity as stripe_quantity,
        computed_lines.amount_minor as computed_amount_minor,
        stripe_lines.amount_minor as stripe_amount_minor
    from computed_lines
    full outer join stripe_lines
        on
            computed_lines.account_id = stripe_lines.account_id
            and computed_lines.period = stripe_lines.period
            and computed_lines.category = stripe_lines.category
),

classified as (
    select
        {{ dbt.concat(["account_id", "'|'", "period", "'|'", "coalesce(category, '')"]) }} as invoice_line_rec_id,
        account_id,
        period,
        category,
        computed_quantity,
        stripe_quantity,
        computed_amount_minor,
        stripe_amount_minor,
        case
            when stripe_quantity is null and stripe_amount_minor is null then 'missing_in_stripe'
            when computed_quantity is null and computed_amount_minor is null then 'missing_in_computed'
            when
                computed_quantity = stripe_quantity
                and computed_amount_minor = stripe_amount_minor
                then 'matched'
            else 'drift'
        end as classified_status
    from joined
),

explained as (
    select
        classified.*,
        {{ explanation_for('invoice_lines', {
            'account_id': "classified.account_id",
            'period': "classified.period",
            'category': "classified.category"
        }) }} as explanation_id
    from classified
)

select
    explained.*,
    {{ explained_status('classified_status', 'explanation_id') }} as status
from explained
