-- One row per account, data category and day before as_of: what metering accepted (latest
-- valid versions) against what billing counted (latest counter version).
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

metering_daily as (
    select
        account_id,
        category,
        usage_day,
        sum(quantity) as metering_quantity
    from {{ ref('int_metering_usage_current') }}
    where outcome = 'accepted'
    group by account_id, category, usage_day
),

billing_daily as (
    select * from {{ ref('int_billing_usage_counters_latest') }}
),

joined as (
    select
        coalesce(metering_daily.account_id, billing_daily.account_id) as account_id,
        coalesce(metering_daily.category, billing_daily.category) as category,
        coalesce(metering_daily.usage_day, billing_daily.usage_day) as usage_day,
        metering_daily.metering_quantity,
        billing_daily.quantity as billing_quantity,
        billing_daily.rows_at_latest as billing_rows_at_latest
    from metering_daily
    full outer join billing_daily
        on
            metering_daily.account_id = billing_daily.account_id
            and metering_daily.category = billing_daily.category
            and metering_daily.usage_day = billing_daily.usage_day
),

compared as (
    select
        joined.*,
        case
            when joined.metering_quantity is null then joined.billing_quantity
            when joined.billing_quantity is null then joined.metering_quantity
            when joined.metering_quantity > joined.billing_quantity
                then joined.metering_quantity - joined.billing_quantity
            else joined.billing_quantity - joined.metering_quantity
        end as abs_diff,
        joined.usage_day >= as_of.late_window_start as is_in_late_window
    from joined
    cross join as_of
    where {{ dbt.dateadd('day', 1, 'joined.usage_day') }} <= as_of.as_of
),

classified as (
    select
        {{ dbt.concat(["account_id", "'|'", "category", "'|'", format_day('usage_day')]) }} as usage_daily_id,
        account_id,
        category,
        usage_day as day,
        metering_quantity,
        billing_quantity,
        billing_rows_at_latest,
        abs_diff,
        {{ relative_difference('metering_quantity', 'billing_quantity') }} as rel_diff,
        is_in_late_window,
        case
            when billing_rows_at_latest > 1 then 'duplicate_in_billing'
            when (metering_quantity is null or billing_quantity is null) and is_in_late_window
                then 'late_pending'
            when billing_quantity is null then 'missing_in_billing'
            when metering_quantity is null then 'missing_in_metering'
            when metering_quantity = billing_quantity then 'matched'
            when {{ within_usage_tolerance('category', 'metering_quantity', 'billing_quantity') }}
                then 'within_tolerance'
            when is_in_late_window then 'late_pending'
            else 'drift'
        end as classified_status
    from compared
),

explained as (
    select
        classified.*,
        {{ explanation_for('usage_daily', {
            'account_id': "classified.account_id",
            'category': "classified.category",
            'day': format_day('classified.day')
        }) }} as explanation_id
    from classified
)

select
    explained.*,
    {{ explained_status('classified_status', 'explanation_id') }} as status
from explained
