-- as_of is derived from data, never from the clock: the end of the latest loaded metering
-- interval. Everything before it has been ingested. first_interval_start is where the
-- ingested history begins: no billing period starts before it.
with

batches as (
    select * from {{ ref('stg_ledger__batches') }}
),

metering_loaded as (
    select
        max(interval_end) as as_of,
        min(interval_start) as first_interval_start
    from batches
    where
        batch_source = 'metering'
        and status = 'loaded'
)

select
    as_of,
    first_interval_start,
    cast(as_of as date) as as_of_date,
    {{ dbt.dateadd('day', -1 * var('late_window_days'), 'as_of') }} as late_window_start
from metering_loaded
