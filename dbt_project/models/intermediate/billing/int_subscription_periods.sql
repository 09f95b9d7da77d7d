-- noqa: disable=RF03,RF04,LT05
-- One row per subscription and billing period it covers by at least one day: the segment
-- [segment_start, segment_end) of the period it bills, in whole UTC days. A subscription
-- covers the days from the day it starts to the day it ends (exclusive); where an account's
-- subscriptions overlap (bad input or a plan change entered late), the later-starting one
-- takes over from its start day, so no day is ever billed twice.
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

ordered as (
    select
        subscriptions.*,
        lead(subscriptions.started_at) over (
            partition by subscriptions.account_id
            order by subscriptions.started_at, subscriptions.subscription_id
        ) as next_started_at
    from subscriptions
),

effective as (
    select
        account_id,
        subscription_id,
        plan_id,
        rounding_mode,
        cast(started_at as date) as start_day,
        cast(
            case
                when next_started_at is not null and (ended_at is null or next_started_at < ended_at)
                    then next_started_at
                else ended_at
            end
            as date
        ) as end_day
    from ordered
),

segments as (
    select
        effective.account_id,
        effective.subscription_id,
        effective.plan_id,
        effective.rounding_mode,
        periods.period,
        periods.period_start,
        periods.period_end,
        case
            when effective.start_day > periods.period_start then effective.start_day
            else periods.period_start
        end as segment_start,
        case
            when effective.end_day is not null and effective.end_day < periods.period_end then effective.end_day
            else periods.period_end
        end as segment_end
    from effective
    inner join periods
        on
            effective.start_day < periods.period_end
            and (effective.end_day is null or effective.end_day > periods.period_start)
)

select
    {{ dbt.concat(["segments.subscription_id", "'|'", "segments.period"]) }} as subscription_period_key,
    segments.account_id,
    segments.subscription_id,
    segments.plan_id,
    segments.rounding_mode,
    segments.period,
    segments.period_start,
    segments.period_end,
    segments.segment_start,
    segments.segment_end,
    {{ dbt.datediff('segments.segment_start', 'segments.segment_end', 'day') }}         as segment_days,
    {{ dbt.datediff('segments.period_start', 'segments.period_end', 'day') }}         as period_days,
    accounts.currency,
    plans.currency as plan_currency,
    plans.base_fee_minor
from segments
inner join accounts
    on segments.account_id = accounts.account_id
left join plans
    on segments.plan_id = plans.plan_id
where segments.segment_end > segments.segment_start
