-- The accounting periods whose journal and revenue are frozen: a period closed by meterline close
-- (ledger.period_locks) and not reopened since (ledger.period_audit: the latest action is not
-- 'reopened'). A reopened period's invoices stay issued; only its accounting is open again until
-- it is closed anew.
with

locks as (
    select * from {{ ref('stg_ledger__period_locks') }}
),

latest_action as (
    select
        period,
        action,
        row_number() over (partition by period order by seq desc) as action_rank
    from {{ ref('stg_ledger__period_audit') }}
)

select
    locks.period,
    locks.locked_at_interval
from locks
left join latest_action
    on
        locks.period = latest_action.period
        and latest_action.action_rank = 1
where coalesce(latest_action.action, 'closed') = 'closed'
