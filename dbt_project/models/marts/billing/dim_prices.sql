-- One row per price book row (plan, category, validity, tier) of the latest billing snapshot:
-- the catalogue as data (docs/pricing.md).
with

price_books as (
    select * from {{ ref('int_billing_price_books_snapshot') }}
),

plans as (
    select * from {{ ref('int_billing_plans_snapshot') }}
)

select
    price_books.price_id,
    price_books.plan_id,
    plans.plan_name,
    plans.currency,
    price_books.category,
    price_books.effective_from,
    price_books.effective_to,
    price_books.pricing_model,
    price_books.included_quantity,
    price_books.reserved_quantity,
    price_books.reserved_unit_price_decimal,
    price_books.spend_cap_minor,
    price_books.package_size,
    price_books.spike_multiplier,
    price_books.tier_start,
    price_books.tier_end,
    price_books.unit_price_decimal
from price_books
left join plans
    on price_books.plan_id = plans.plan_id
