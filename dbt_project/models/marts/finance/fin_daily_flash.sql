-- The daily flash's money figures: one row per currency and report day (fin_calendar), for
-- four measures, each for the day, month to date and the previous month to date over the same
-- number of days (fin_calendar's compare day), with the change in basis points:
--   billed     what was invoiced: the receivables side of invoice, void (negative), prepaid
--              credit sale and credit note (negative) journal entries, on their entry date
--              (an invoice is dated its billing period's last day)
--   collected  cash received: succeeded Stripe charges (journal charge entries, cash side)
--   refunded   cash returned: succeeded refunds (journal refund entries), positive
--   revenue    net revenue recognized that day (fct_revenue_daily: refunds and credit notes
--              negative, catch-ups on the day they are booked)
-- From the general journal, so a locked month shows what was frozen at its close. Catch-up
-- entries (late data about a locked month) are not billings or collections of their day.
-- prev_mtd is NULL when there is no previous month; change_bps (macro signed_bps) is NULL
-- when it is NULL or 0.
with

calendar as (
    select * from {{ ref('fin_calendar') }}
),

journal as (
    select * from {{ ref('fct_journal_lines') }}
    where not is_catchup
),

revenue as (
    select * from {{ ref('fct_revenue_daily') }}
),

journal_days as (
    select
        currency,
        entry_date as report_day,
        sum(case
            when gl_key = 'receivables' and entry_type in ('invoice', 'void', 'credit_grant', 'credit_note')
                then amount_minor
            else 0
        end) as billed_minor,
        sum(case
            when gl_key = 'cash_clearing' and entry_type = 'charge' then amount_minor
            else 0
        end) as collected_minor,
        sum(case
            when gl_key = 'cash_clearing' and entry_type = 'refund' then -amount_minor
            else 0
        end) as refunded_minor,
        0 as revenue_minor
    from journal
    group by currency, entry_date
),

revenue_days as (
    select
        currency,
        revenue_date as report_day,
        0 as billed_minor,
        0 as collected_minor,
        0 as refunded_minor,
        sum(revenue_minor) as revenue_minor
    from revenue
    group by currency, revenue_date
),

movements as (
    select * from journal_days
    union all
    select * from revenue_days
),

currencies as (
    select distinct movements.currency
    from movements
),

daily as (
    select
        currency,
        report_day,
        sum(billed_minor) as billed_minor,
        sum(collected_minor) as collected_minor,
        sum(refunded_minor) as refunded_minor,
        sum(revenue_minor) as revenue_minor
    from movements
    group by currency, report_day
),

grid as (
    select
        currencies.currency,
        calendar.report_day,
        calendar.period,
        calendar.day_of_month,
        calendar.compare_period,
        calendar.compare_day_of_month,
        coalesce(daily.billed_minor, 0) as billed_day_minor,
        coalesce(daily.collected_minor, 0) as collected_day_minor,
        coalesce(daily.refunded_minor, 0) as refunded_day_minor,
        coalesce(daily.revenue_minor, 0) as revenue_day_minor
    from currencies
    cross join calendar
    left join daily
        on
            currencies.currency = daily.currency
            and calendar.report_day = daily.report_day
),

to_date as (
    select
        grid.*,
        {{ running_sum('grid.billed_day_minor', ['grid.currency', 'grid.period'], 'grid.report_day') }}
            as billed_mtd_minor,
        {{ running_sum('grid.collected_day_minor', ['grid.currency', 'grid.period'], 'grid.report_day') }}
            as collected_mtd_minor,
        {{ running_sum('grid.refunded_day_minor', ['grid.currency', 'grid.period'], 'grid.report_day') }}
            as refunded_mtd_minor,
        {{ running_sum('grid.revenue_day_minor', ['grid.currency', 'grid.period'], 'grid.report_day') }}
            as revenue_mtd_minor
    from grid
),

compared as (
    select
        to_date.*,
        previous_month.billed_mtd_minor as billed_prev_mtd_minor,
        previous_month.collected_mtd_minor as collected_prev_mtd_minor,
        previous_month.refunded_mtd_minor as refunded_prev_mtd_minor,
        previous_month.revenue_mtd_minor as revenue_prev_mtd_minor
    from to_date
    left join to_date as previous_month
        on
            to_date.currency = previous_month.currency
            and to_date.compare_period = previous_month.period
            and to_date.compare_day_of_month = previous_month.day_of_month
)

select
    {{ dbt.concat(['currency', "'|'", format_day('report_day')]) }} as flash_key,
    currency,
    report_day,
    period,
    day_of_month,
    compare_period,
    compare_day_of_month,

    cast(billed_day_minor as {{ dbt.type_bigint() }}) as billed_day_minor,
    cast(billed_mtd_minor as {{ dbt.type_bigint() }}) as billed_mtd_minor,
    cast(billed_prev_mtd_minor as {{ dbt.type_bigint() }}) as billed_prev_mtd_minor,
    {{ signed_bps('billed_mtd_minor - billed_prev_mtd_minor', 'billed_prev_mtd_minor') }}
        as billed_change_bps,
    cast(collected_day_minor as {{ dbt.type_bigint() }}) as collected_day_minor,
    cast(collected_mtd_minor as {{ dbt.type_bigint() }}) as collected_mtd_minor,
    cast(collected_prev_mtd_minor as {{ dbt.type_bigint() }}) as collected_prev_mtd_minor,
    {{ signed_bps('collected_mtd_minor - collected_prev_mtd_minor', 'collected_prev_mtd_minor') }}
        as collected_change_bps,
    cast(refunded_day_minor as {{ dbt.type_bigint() }}) as refunded_day_minor,
    cast(refunded_mtd_minor as {{ dbt.type_bigint() }}) as refunded_mtd_minor,
    cast(refunded_prev_mtd_minor as {{ dbt.type_bigint() }}) as refunded_prev_mtd_minor,
    {{ signed_bps('refunded_mtd_minor - refunded_prev_mtd_minor', 'refunded_prev_mtd_minor') }}
        as refunded_change_bps,
    cast(revenue_day_minor as {{ dbt.type_bigint() }}) as revenue_day_minor,
    cast(revenue_mtd_minor as {{ dbt.type_bigint() }}) as revenue_mtd_minor,
    cast(revenue_prev_mtd_minor as {{ dbt.type_bigint() }}) as revenue_prev_mtd_minor,
    {{ signed_bps('revenue_mtd_minor - revenue_prev_mtd_minor', 'revenue_prev_mtd_minor') }}
        as revenue_change_bps
from compared
