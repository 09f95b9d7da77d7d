-- The days finance reports can be made for: one row per day of a billing period whose data is
-- complete (the day ended at or before as_of), with its month-to-date comparison day in the
-- previous month (DECISIONLOG.md, "Daily flash measures"): a month's last day compares with the
-- whole previous month (its last day: April 30 with March 1-31, February 28 with January 1-31,
-- March 31 with February 1-28), so the previous month's invoices, dated its last day, are in the
-- comparison; any other day with the same day of the month, capped at the previous month's
-- length (March 30 with February 1-28). compare_period is NULL in the first billing period (no
-- previous month in the warehouse).
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

periods as (
    select * from {{ ref('int_billing_periods') }}
),

locks as (
    select * from {{ ref('int_accounting_locks') }}
),

numbers as (
    {{ dbt.generate_series(31) }}
),

period_lengths as (
    select
        period,
        period_start,
        period_end,
        {{ dbt.datediff('period_start', 'period_end', 'day') }} as days_in_period  -- noqa: LT05
    from periods
),

period_days as (
    select
        period_lengths.period,
        period_lengths.period_start,
        period_lengths.period_end,
        period_lengths.days_in_period,
        cast(numbers.generated_number as {{ dbt.type_bigint() }}) as day_of_month,
        {%- set offset = 'cast(numbers.generated_number as ' ~ dbt.type_bigint() ~ ') - 1' %}
        cast({{ dbt.dateadd('day', offset, 'period_lengths.period_start') }} as date) as report_day
    from period_lengths
    cross join numbers
    where numbers.generated_number <= period_lengths.days_in_period
),

compared as (
    select
        period_days.*,
        previous_periods.period as compare_period,
        case
            when previous_periods.period is null then null
            when period_days.day_of_month = period_days.days_in_period then previous_periods.days_in_period
            when period_days.day_of_month < previous_periods.days_in_period then period_days.day_of_month
            else previous_periods.days_in_period
        end as compare_day_of_month
    from period_days
    left join period_lengths as previous_periods
        on period_days.period_start = previous_periods.period_end
)

select
    {{ format_day('compared.report_day') }} as day_key,
    compared.report_day,
    compared.period,
    compared.period_start,
    compared.period_end,
    compared.day_of_month,
    compared.days_in_period,
    compared.compare_period,
    compared.compare_day_of_month,
    compared.period_end <= as_of.as_of as is_period_complete,
    locks.period is not null as is_period_locked,
    as_of.as_of
from compared
cross join as_of
left join locks
    on compared.period = locks.period
where {{ dbt.dateadd('day', 1, 'compared.report_day') }} <= as_of.as_of
