-- Usage per account, category and period joined to the price book rows (one per tier) of
-- the plan active at period start, valid at period start
-- (effective_from <= period_start < coalesce(effective_to, infinity)).
-- Usage without a subscription or without a price row keeps one row with NULL price.
with

usage_periods as (
    select * from {{ ref('int_usage_periods_aggregated') }}
),

accounts as (
    select * from {{ ref('int_billing_accounts_snapshot') }}
),

account_periods as (
    select * from {{ ref('int_account_periods_resolved') }}
),

price_books as (
    select * from {{ ref('int_billing_price_books_snapshot') }}
)

select
    usage_periods.usage_period_key,
    usage_periods.account_id,
    usage_periods.category,
    usage_periods.period,
    usage_periods.period_start,
    usage_periods.period_end,
    accounts.currency,
    account_periods.subscription_id,
    account_periods.plan_id,
    usage_periods.metered_quantity,
    price_books.price_id,
    price_books.included_quantity,
    price_books.tier_start,
    price_books.tier_end,
    price_books.unit_price_decimal
from usage_periods
inner join accounts
    on usage_periods.account_id = accounts.account_id
left join account_periods
    on
        usage_periods.account_id = account_periods.account_id
        and usage_periods.period = account_periods.period
left join price_books
    on
        account_periods.plan_id = price_books.plan_id
        and usage_periods.category = price_books.category
        and usage_periods.period_start >= price_books.effective_from
        and (price_books.effective_to is null or usage_periods.period_start < price_books.effective_to)
