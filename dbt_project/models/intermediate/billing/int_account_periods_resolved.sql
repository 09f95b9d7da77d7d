-- One row per account and billing period with the subscription active at period start
-- (started_at <= period_start < coalesce(ended_at, infinity)) and its plan.
with

periods as (
    select * from {{ ref('int_billing_periods') }}
),

accounts as (
    select * from {{ ref('int_billing_accounts_snapshot') }}
),

subscriptions as (
    select * from {{ ref('int_billing_subscriptions_snapshot') }}
),

plans as (
    select * from {{ ref('int_billing_plans_snapshot') }}
),

active as (
    select
        subscriptions.account_id,
        subscriptions.subscription_id,
        subscriptions.plan_id,
        periods.period,
        periods.period_start,
        periods.period_end,
        -- overlapping subscriptions are bad input: the latest started one wins
        row_number() over (
            partition by subscriptions.account_id, periods.period
            order by subscriptions.started_at desc, subscriptions.subscription_id desc
        ) as subscription_rank
    from subscriptions
    inner join periods
        on
            subscriptions.started_at <= periods.period_start
            and (subscriptions.ended_at is null or subscriptions.ended_at > periods.period_start)
)

select
    {{ dbt.concat(["active.account_id", "'|'", "active.period"]) }} as account_period_key,
    active.account_id,
    active.period,
    active.period_start,
    active.period_end,
    accounts.currency,
    accounts.billing_anchor_day,
    active.subscription_id,
    active.plan_id,
    plans.currency as plan_currency,
    plans.base_fee_minor
from active
inner join accounts
    on active.account_id = accounts.account_id
left join plans
    on active.plan_id = plans.plan_id
where active.subscription_rank = 1
