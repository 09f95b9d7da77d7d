-- The calendar-month spine of billing periods, [period_start, period_end), from the first
-- month wholly inside the ingested history up to the period that contains as_of.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

bounds as (
    -- the first calendar month that lies wholly inside the ingested history: a month whose
    -- start precedes the first ingested day is never billed from partial data
    {%- set day_before_first = dbt.dateadd('day', -1, 'as_of.first_interval_start') %}
    {%- set month_of_day_before = dbt.date_trunc('month', day_before_first) %}
    select cast({{ dbt.dateadd('month', 1, month_of_day_before) }} as date) as first_period_start
    from as_of
),

numbers as (
    {{ dbt.generate_series(var('max_billing_periods')) }}
),

spine as (
    select
        {%- set months_after_first = 'cast(numbers.generated_number as ' ~ dbt.type_bigint() ~ ') - 1' %}
        cast({{ dbt.dateadd('month', months_after_first, 'bounds.first_period_start') }} as date) as period_start
    from bounds
    cross join numbers
)

select
    {{ format_period('spine.period_start') }} as period,
    spine.period_start,
    cast({{ dbt.dateadd('month', 1, 'spine.period_start') }} as date) as period_end
from spine
cross join as_of
where spine.period_start < as_of.as_of
