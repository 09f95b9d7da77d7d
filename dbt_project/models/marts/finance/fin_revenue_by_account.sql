-- Per currency, accounting month and account: recognized revenue (fct_revenue_daily, as in
-- fin_revenue_by_product) and what the account's invoice for that billing period bills
-- (fct_invoices, not void; billed_minor NULL without one), with the currency's month revenue
-- total, the account's share of it in basis points and its rank (largest revenue first, then
-- account id). Accounts with an invoice but no revenue (a fully credited month) are included.
with

revenue as (
    select * from {{ ref('fct_revenue_daily') }}
),

invoices as (
    select * from {{ ref('fct_invoices') }}
    where state <> 'void'
),

accounts as (
    select * from {{ ref('dim_accounts') }}
),

amounts as (
    select
        currency,
        accounting_period as period,
        account_id,
        revenue_minor,
        cast(null as {{ dbt.type_bigint() }}) as billed_minor
    from revenue
    union all
    select
        currency,
        period,
        account_id,
        0 as revenue_minor,
        total_minor as billed_minor
    from invoices
),

account_amounts as (
    select
        currency,
        period,
        account_id,
        sum(revenue_minor) as revenue_minor,
        sum(billed_minor) as billed_minor
    from amounts
    group by currency, period, account_id
),

with_totals as (
    {{ revenue_ranking('account_amounts', 'account_id') }}
)

select
    {{ dbt.concat(['with_totals.currency', "'|'", 'with_totals.period', "'|'", 'with_totals.account_id']) }}
        as revenue_account_key,
    with_totals.currency,
    with_totals.period,
    with_totals.account_id,
    accounts.account_name,
    cast(with_totals.revenue_minor as {{ dbt.type_bigint() }}) as revenue_minor,
    cast(with_totals.billed_minor as {{ dbt.type_bigint() }}) as billed_minor,
    cast(with_totals.period_total_minor as {{ dbt.type_bigint() }}) as period_total_minor,
    {{ share_of_total('with_totals.revenue_minor', 'with_totals.period_total_minor') }} as share_bps,
    cast(with_totals.rank_in_period as {{ dbt.type_bigint() }}) as account_rank
from with_totals
left join accounts
    on with_totals.account_id = accounts.account_id
