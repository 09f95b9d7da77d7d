-- Accepted usage per data category and report day (fin_calendar), summed over accounts
-- (int_usage_days: the latest version of every metered hour, before spike protection holds
-- anything back), with its trend: the last 7 days up to the day against the 7 days before them,
-- in basis points. has_full_trend is false while fewer than 14 days of the category are in the
-- calendar. Days without usage are 0, so the windows always cover whole days.
with

calendar as (
    select * from {{ ref('fin_calendar') }}
),

usage_days as (
    select * from {{ ref('int_usage_days') }}
),

categories as (
    select * from {{ ref('categories') }}
),

daily as (
    select
        category,
        usage_day,
        sum(quantity) as quantity,
        count(distinct account_id) as account_count
    from usage_days
    where quantity <> 0
    group by category, usage_day
),

used_categories as (
    select distinct daily.category
    from daily
),

grid as (
    select
        used_categories.category,
        calendar.report_day,
        calendar.period,
        coalesce(daily.quantity, 0) as quantity,
        coalesce(daily.account_count, 0) as account_count
    from used_categories
    cross join calendar
    left join daily
        on
            used_categories.category = daily.category
            and calendar.report_day = daily.usage_day
),

windows as (
    select
        grid.*,
        {{ running_sum('grid.quantity', ['grid.category', 'grid.period'], 'grid.report_day') }} as mtd_quantity,
        sum(grid.quantity) over (
            partition by grid.category
            order by grid.report_day
            rows between 6 preceding and current row
        ) as last_7d_quantity,
        coalesce(sum(grid.quantity) over (
            partition by grid.category
            order by grid.report_day
            rows between 13 preceding and 7 preceding
        ), 0) as prior_7d_quantity,
        row_number() over (partition by grid.category order by grid.report_day) as day_number
    from grid
)

select
    {{ dbt.concat(['windows.category', "'|'", format_day('windows.report_day')]) }} as usage_key,
    windows.category,
    coalesce(categories.unit, 'unit') as unit,
    windows.report_day,
    windows.period,
    windows.quantity,
    windows.account_count,
    windows.mtd_quantity,
    windows.last_7d_quantity,
    windows.prior_7d_quantity,
    windows.day_number >= 14 as has_full_trend,
    {{ signed_bps('windows.last_7d_quantity - windows.prior_7d_quantity', 'windows.prior_7d_quantity') }}
        as trend_bps
from windows
left join categories
    on windows.category = categories.category
