-- One row per billing account (latest billing snapshot), with the plan of the subscription
-- active at as_of.
with

accounts as (
    select * from {{ ref('int_billing_accounts_snapshot') }}
),

subscriptions as (
    select * from {{ ref('int_billing_subscriptions_snapshot') }}
),

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

current_subscriptions as (
    select
        subscriptions.account_id,
        subscriptions.subscription_id,
        subscriptions.plan_id,
        row_number() over (
            partition by subscriptions.account_id
            order by subscriptions.started_at desc, subscriptions.subscription_id desc
        ) as subscription_rank
    from subscriptions
    cross join as_of
    where
        subscriptions.started_at <= as_of.as_of
        and (subscriptions.ended_at is null or as_of.as_of < subscriptions.ended_at)
)

select
    accounts.account_id,
    accounts.account_name,
    accounts.currency,
    accounts.billing_anchor_day,
    accounts.stripe_customer_id,
    accounts.created_at,
    current_subscriptions.subscription_id as current_subscription_id,
    current_subscriptions.plan_id as current_plan_id
from accounts
left join current_subscriptions
    on
        accounts.account_id = current_subscriptions.account_id
        and current_subscriptions.subscription_rank = 1
