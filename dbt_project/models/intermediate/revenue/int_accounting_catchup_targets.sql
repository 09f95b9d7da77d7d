-- Where a locked accounting period's catch-ups are booked: the first day of the first open
-- accounting period after it. A locked period with no open period after it yet has no row (its
-- differences wait until the next period exists). One rule, used by the journal and by revenue.
with

locks as (
    select * from {{ ref('int_accounting_locks') }}
),

open_periods as (
    select
        periods.period,
        periods.period_start
    from {{ ref('int_billing_periods') }} as periods
    left join locks
        on periods.period = locks.period
    where locks.period is null
),

targets as (
    select
        locks.period as locked_period,
        min(open_periods.period_start) as target_start
    from locks
    inner join open_periods
        on locks.period < open_periods.period
    group by locks.period
)

select
    locked_period,
    target_start,
    {{ format_period('target_start') }} as target_period
from targets
