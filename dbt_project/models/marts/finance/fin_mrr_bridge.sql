-- The MRR bridge: one row per currency and complete billing month, from fin_mrr_movements.
-- opening (the previous month's MRR) + carried_in + new + expansion + reactivation
-- + contraction + churn (both negative) = closing (this month's MRR). ARR = 12 x MRR. Account
-- counts per movement. The data test tests/integrity/mrr_bridge_ties_to_invoice_lines.sql
-- checks closing and opening against the invoice lines (not these movements) and that the
-- movements add up.
with

movements as (
    select * from {{ ref('fin_mrr_movements') }}
),

bridge as (
    select
        currency,
        period,
        sum(opening_mrr_minor) as opening_mrr_minor,
        sum(case when movement = 'carried_in' then movement_minor else 0 end) as carried_in_minor,
        sum(case when movement = 'carried_in' then 1 else 0 end) as carried_in_accounts,
        sum(case when movement = 'new' then movement_minor else 0 end) as new_minor,
        sum(case when movement = 'new' then 1 else 0 end) as new_accounts,
        sum(case when movement = 'expansion' then movement_minor else 0 end) as expansion_minor,
        sum(case when movement = 'expansion' then 1 else 0 end) as expansion_accounts,
        sum(case when movement = 'reactivation' then movement_minor else 0 end) as reactivation_minor,
        sum(case when movement = 'reactivation' then 1 else 0 end) as reactivation_accounts,
        sum(case when movement = 'contraction' then movement_minor else 0 end) as contraction_minor,
        sum(case when movement = 'contraction' then 1 else 0 end) as contraction_accounts,
        sum(case when movement = 'churn' then movement_minor else 0 end) as churn_minor,
        sum(case when movement = 'churn' then 1 else 0 end) as churn_accounts,
        sum(case when movement = 'unchanged' then movement_minor else 0 end) as unchanged_minor,
        sum(case when movement = 'unchanged' then 1 else 0 end) as unchanged_accounts,
        sum(movement_minor) as net_movement_minor,
        sum(mrr_minor) as closing_mrr_minor,
        sum(case when mrr_minor > 0 then 1 else 0 end) as paying_accounts
    from movements
    group by currency, period
)

select
    {{ dbt.concat(['currency', "'|'", 'period']) }} as bridge_key,
    currency,
    period,
    cast(opening_mrr_minor as {{ dbt.type_bigint() }}) as opening_mrr_minor,
    cast(carried_in_minor as {{ dbt.type_bigint() }}) as carried_in_minor,
    cast(carried_in_accounts as {{ dbt.type_bigint() }}) as carried_in_accounts,
    cast(new_minor as {{ dbt.type_bigint() }}) as new_minor,
    cast(new_accounts as {{ dbt.type_bigint() }}) as new_accounts,
    cast(expansion_minor as {{ dbt.type_bigint() }}) as expansion_minor,
    cast(expansion_accounts as {{ dbt.type_bigint() }}) as expansion_accounts,
    cast(reactivation_minor as {{ dbt.type_bigint() }}) as reactivation_minor,
    cast(reactivation_accounts as {{ dbt.type_bigint() }}) as reactivation_accounts,
    cast(contraction_minor as {{ dbt.type_bigint() }}) as contraction_minor,
    cast(contraction_accounts as {{ dbt.type_bigint() }}) as contraction_accounts,
    cast(churn_minor as {{ dbt.type_bigint() }}) as churn_minor,
    cast(churn_accounts as {{ dbt.type_bigint() }}) as churn_accounts,
    cast(unchanged_minor as {{ dbt.type_bigint() }}) as unchanged_minor,
    cast(unchanged_accounts as {{ dbt.type_bigint() }}) as unchanged_accounts,
    cast(net_movement_minor as {{ dbt.type_bigint() }}) as net_movement_minor,
    cast(closing_mrr_minor as {{ dbt.type_bigint() }}) as closing_mrr_minor,
    cast(paying_accounts as {{ dbt.type_bigint() }}) as paying_accounts,
    cast(12 * opening_mrr_minor as {{ dbt.type_bigint() }}) as opening_arr_minor,
    cast(12 * closing_mrr_minor as {{ dbt.type_bigint() }}) as closing_arr_minor
from bridge
