-- Recognized revenue per account, currency, product and day, as known now (before period locks
-- are applied; marts.fct_revenue_daily applies them). Rules (docs/revenue.md):
--   invoice_lines   each product's net amount of a service period (int_revenue_product_amounts)
--                   spread over the days of that period: a data category by its metered quantity
--                   per day (revenue in the day it was consumed), anything else - flat fees,
--                   reserved volume without usage, commitments, unallocated discounts - ratably
--                   by day. Exact: day parts are differences of floored cumulative shares, so
--                   they sum to the amount. Only days before as_of are recognized.
--   credit_breakage what is left of a prepaid credit when it expires, on its expiry day.
--   refund          a succeeded Stripe refund, as contra-revenue (negative) on its day.
--   credit_note     an issued Stripe credit note, as contra-revenue (negative) on its day.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

amounts as (
    select * from {{ ref('int_revenue_product_amounts') }}
    where net_minor <> 0
),

periods as (
    select * from {{ ref('int_billing_periods') }}
),

day_numbers as (
    {{ dbt.generate_series(31) }}
),

-- the days of each period, and only those: 31 day numbers cover the longest month, and a shorter
-- month must not take its next month's first days (their usage is that month's)
period_days as (
    select
        periods.period,
        {%- set day_offset = 'cast(day_numbers.generated_number as ' ~ dbt.type_bigint() ~ ') - 1' %}
        cast({{ dbt.dateadd('day', day_offset, 'periods.period_start') }} as date) as revenue_date
    from periods
    cross join day_numbers
    where cast({{ dbt.dateadd('day', day_offset, 'periods.period_start') }} as date) < periods.period_end
),

usage_weights as (
    select
        usage_days.account_id,
        usage_days.category as product,
        period_days.period as service_period,
        period_days.revenue_date,
        cast(usage_days.quantity as decimal(38, 0)) as weight
    from {{ ref('int_usage_days') }} as usage_days
    inner join period_days
        on cast(usage_days.usage_day as date) = period_days.revenue_date
    where usage_days.quantity > 0
),

weighted_products as (
    select distinct
        account_id,
        product,
        service_period
    from usage_weights
),

-- every day of the period with weight 1 for products without usage that period
ratable_weights as (
    select
        amounts.account_id,
        amounts.product,
        amounts.service_period,
        period_days.revenue_date,
        cast(1 as decimal(38, 0)) as weight
    from amounts
    inner join period_days
        on amounts.service_period = period_days.period
    left join weighted_products
        on
            amounts.account_id = weighted_products.account_id
            and amounts.product = weighted_products.product
            and amounts.service_period = weighted_products.service_period
    where weighted_products.account_id is null
),

weights as (
    select * from usage_weights
    union all
    select * from ratable_weights
),

shares as (
    select
        amounts.account_id,
        amounts.currency,
        amounts.product,
        amounts.service_period,
        weights.revenue_date,
        amounts.net_minor,
        weights.weight,
        sum(weights.weight) over (
            partition by amounts.account_id, amounts.currency, amounts.product, amounts.service_period
        ) as total_weight,
        sum(weights.weight) over (
            partition by amounts.account_id, amounts.currency, amounts.product, amounts.service_period
            order by weights.revenue_date
            rows between unbounded preceding and current row
        ) as cumulative_weight
    from amounts
    inner join weights
        on
            amounts.account_id = weights.account_id
            and amounts.product = weights.product
            and amounts.service_period = weights.service_period
),

scheduled as (
    select
        account_id,
        currency,
        product,
        service_period,
        revenue_date,
        'invoice_lines' as revenue_source,
        case when net_minor < 0 then -1 else 1 end
        * (
            {{ floor_div('cast(abs(net_minor) as decimal(38, 0)) * cumulative_weight', 'total_weight') }}
            - {{ floor_div('cast(abs(net_minor) as decimal(38, 0)) * (cumulative_weight - weight)', 'total_weight') }}
        ) as revenue_minor
    from shares
),

prepaid_credits as (
    select * from {{ ref('int_billing_credits_snapshot') }}
    where credit_reason = 'prepaid'
),

drawn as (
    select
        line_key,
        -sum(amount_minor) as drawn_minor
    from {{ ref('fct_invoice_lines') }}
    where
        line_type = 'credit'
        and state <> 'void'
    group by line_key
),

breakage as (
    select
        prepaid_credits.account_id,
        prepaid_credits.currency,
        'credit_breakage' as product,
        {{ format_period('prepaid_credits.expires_at') }} as service_period,
        cast(prepaid_credits.expires_at as date) as revenue_date,
        'credit_breakage' as revenue_source,
        prepaid_credits.amount_minor - coalesce(drawn.drawn_minor, 0) as revenue_minor
    from prepaid_credits
    cross join as_of
    left join drawn
        on {{ dbt.concat(["'credit|'", "prepaid_credits.credit_id"]) }} = drawn.line_key
    where
        prepaid_credits.expires_at is not null
        and prepaid_credits.expires_at <= as_of.as_of
        and prepaid_credits.amount_minor - coalesce(drawn.drawn_minor, 0) <> 0
),

stripe_accounts as (
    select * from {{ ref('int_stripe_customers_latest') }}
),

refunds as (
    select
        coalesce(stripe_accounts.account_id, 'unknown') as account_id,
        refunds.currency,
        'refunds' as product,
        {{ format_period('refunds.created_at') }} as service_period,
        cast(refunds.created_at as date) as revenue_date,
        'refund' as revenue_source,
        -refunds.amount_minor as revenue_minor
    from {{ ref('int_stripe_refunds_latest') }} as refunds
    left join {{ ref('int_stripe_charges_latest') }} as charges
        on refunds.charge_id = charges.charge_id
    left join stripe_accounts
        on charges.customer_id = stripe_accounts.customer_id
    where refunds.refund_status = 'succeeded'
),

credit_notes as (
    select
        coalesce(stripe_accounts.account_id, 'unknown') as account_id,
        credit_notes.currency,
        'credit_notes' as product,
        {{ format_period('credit_notes.created_at') }} as service_period,
        cast(credit_notes.created_at as date) as revenue_date,
        'credit_note' as revenue_source,
        -credit_notes.amount_minor as revenue_minor
    from {{ ref('int_stripe_credit_notes_latest') }} as credit_notes
    left join stripe_accounts
        on credit_notes.customer_id = stripe_accounts.customer_id
    where credit_notes.credit_note_status <> 'void'
),

recognized as (
    select scheduled.*
    from scheduled
    cross join as_of
    where scheduled.revenue_date < as_of.as_of_date
    union all
    select * from breakage
    union all
    select * from refunds
    union all
    select * from credit_notes
)

select
    account_id,
    currency,
    product,
    revenue_date,
    {{ format_period('revenue_date') }} as accounting_period,
    service_period,
    revenue_source,
    cast(sum(revenue_minor) as {{ dbt.type_bigint() }}) as revenue_minor
from recognized
group by account_id, currency, product, revenue_date, service_period, revenue_source
having sum(revenue_minor) <> 0
