-- Recognized revenue per currency, accounting month and product (fct_revenue_daily: locked
-- months as frozen at their close; refunds and credit notes negative as contra-revenue;
-- catch-ups in the month they are booked, also shown apart in catchup_minor), with the month's
-- total per currency, each product's share of it in basis points (NULL when the total is not
-- positive) and its rank (largest revenue first, then product name).
with

revenue as (
    select * from {{ ref('fct_revenue_daily') }}
),

products as (
    select
        currency,
        accounting_period as period,
        product,
        sum(revenue_minor) as revenue_minor,
        sum(case when is_catchup then revenue_minor else 0 end) as catchup_minor
    from revenue
    group by currency, accounting_period, product
),

with_totals as (
    {{ revenue_ranking('products', 'product') }}
)

select
    {{ dbt.concat(['currency', "'|'", 'period', "'|'", 'product']) }} as revenue_product_key,
    currency,
    period,
    product,
    cast(revenue_minor as {{ dbt.type_bigint() }}) as revenue_minor,
    cast(catchup_minor as {{ dbt.type_bigint() }}) as catchup_minor,
    cast(period_total_minor as {{ dbt.type_bigint() }}) as period_total_minor,
    {{ share_of_total('revenue_minor', 'period_total_minor') }} as share_bps,
    cast(rank_in_period as {{ dbt.type_bigint() }}) as product_rank
from with_totals
