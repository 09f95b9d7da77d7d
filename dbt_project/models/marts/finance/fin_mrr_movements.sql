-- Monthly recurring revenue (MRR) per account, currency and complete billing month, and how it
-- moved from the month before (DECISIONLOG.md, "MRR"). An account's MRR for a month is what its
-- invoice for that billing period bills on recurring lines: base fees (flat_fee), usage,
-- reserved volume, commitment true-ups and contractual discounts. Not MRR: credits drawn (how an
-- invoice is paid, or one-off goodwill), adjustment lines (corrections of earlier months),
-- refunds, credit notes, breakage; void invoices. Negative amounts count as 0. ARR = 12 x MRR.
-- Movement, against the previous month's MRR (prev). "Subscribed in the warehouse": the
-- account's first subscription on a plan in the currency starts in the warehouse's first month
-- or later (checked every month, per account and currency):
--   carried_in    the warehouse's first month, MRR > 0, not subscribed in the warehouse: the
--                 account already had MRR before it (its history is unknown)
--   new           MRR > 0, prev = 0, never any MRR before, subscribed in the warehouse
--   reactivation  MRR > 0, prev = 0, and MRR > 0 in some earlier month, or never any MRR in the
--                 warehouse but subscribed before it (an existing customer paying again)
--   expansion     MRR > prev > 0;  contraction  prev > MRR > 0;  unchanged  MRR = prev > 0
--   churn         MRR = 0 < prev
-- MRR is what the invoice bills, so a subscription starting mid-month shows its prorated fee
-- (new), and the step to the full fee the next month is expansion (DECISIONLOG.md, "MRR").
-- movement_minor is the change it contributes: opening (prev, 0 in the first month) +
-- movement = closing (MRR), per row and so per currency (fin_mrr_bridge).
-- Months: complete billing months only (a month in progress would read as contraction).
with

calendar as (
    select * from {{ ref('fin_calendar') }}
),

lines as (
    select * from {{ ref('fct_invoice_lines') }}
    where
        state <> 'void'
        and line_type in ('flat_fee', 'usage', 'reserved', 'commitment_true_up', 'discount')
        and service_period = period
),

subscriptions as (
    select * from {{ ref('int_billing_subscriptions_snapshot') }}
),

plans as (
    select * from {{ ref('int_billing_plans_snapshot') }}
),

months as (
    select
        period,
        min(period_start) as period_start
    from calendar
    where is_period_complete
    group by period
),

first_month as (
    select min(period) as period
    from months
),

recurring as (
    select
        account_id,
        currency,
        period,
        sum(amount_minor) as recurring_minor
    from lines
    group by account_id, currency, period
),

account_currencies as (
    select distinct
        recurring.account_id,
        recurring.currency
    from recurring
    inner join months
        on recurring.period = months.period
),

first_subscriptions as (
    select
        subscriptions.account_id,
        plans.currency,
        {{ format_period('min(subscriptions.started_at)') }} as first_subscription_period
    from subscriptions
    inner join plans
        on subscriptions.plan_id = plans.plan_id
    group by subscriptions.account_id, plans.currency
),

grid as (
    select
        account_currencies.account_id,
        account_currencies.currency,
        months.period,
        months.period_start,
        case
            when coalesce(recurring.recurring_minor, 0) > 0 then recurring.recurring_minor
            else 0
        end as mrr_minor
    from account_currencies
    cross join months
    left join recurring
        on
            account_currencies.account_id = recurring.account_id
            and account_currencies.currency = recurring.currency
            and months.period = recurring.period
),

history as (
    select
        grid.*,
        lag(grid.mrr_minor) over (
            partition by grid.account_id, grid.currency order by grid.period
        ) as prev_mrr_minor,
        coalesce(max(case when grid.mrr_minor > 0 then 1 else 0 end) over (
            partition by grid.account_id, grid.currency
            order by grid.period
            rows between unbounded preceding and 2 preceding
        ), 0) = 1 as had_earlier_mrr
    from grid
),

subscribed as (
    select
        history.*,
        first_month.period as first_month_period,
        coalesce(first_subscriptions.first_subscription_period >= first_month.period, false)
            as is_subscribed_in_warehouse
    from history
    cross join first_month
    left join first_subscriptions
        on
            history.account_id = first_subscriptions.account_id
            and history.currency = first_subscriptions.currency
),

classified as (
    select
        subscribed.*,
        case
            when subscribed.mrr_minor > 0 and subscribed.period = subscribed.first_month_period
                then case when subscribed.is_subscribed_in_warehouse then 'new' else 'carried_in' end
            when
                subscribed.mrr_minor > 0 and subscribed.prev_mrr_minor = 0
                and (subscribed.had_earlier_mrr or not subscribed.is_subscribed_in_warehouse)
                then 'reactivation'
            when subscribed.mrr_minor > 0 and subscribed.prev_mrr_minor = 0 then 'new'
            when subscribed.mrr_minor > subscribed.prev_mrr_minor and subscribed.mrr_minor > 0 then 'expansion'
            when subscribed.mrr_minor < subscribed.prev_mrr_minor and subscribed.mrr_minor > 0 then 'contraction'
            when subscribed.mrr_minor > 0 then 'unchanged'
            when subscribed.prev_mrr_minor > 0 then 'churn'
            else 'none'
        end as movement
    from subscribed
)

select
    {{ dbt.concat(['account_id', "'|'", 'currency', "'|'", 'period']) }} as mrr_key,
    account_id,
    currency,
    period,
    period_start,
    movement,
    cast(coalesce(prev_mrr_minor, 0) as {{ dbt.type_bigint() }}) as opening_mrr_minor,
    cast(case
        when movement in ('carried_in', 'new', 'reactivation') then mrr_minor
        when movement = 'churn' then -prev_mrr_minor
        when movement in ('expansion', 'contraction', 'unchanged') then mrr_minor - prev_mrr_minor
        else 0
    end as {{ dbt.type_bigint() }}) as movement_minor,
    cast(mrr_minor as {{ dbt.type_bigint() }}) as mrr_minor,
    cast(12 * mrr_minor as {{ dbt.type_bigint() }}) as arr_minor
from classified
where movement <> 'none'
