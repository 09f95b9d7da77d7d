-- noqa: disable=RF03,RF04,LT05
-- Every invoice line as computed now from current data, for every billing period (issued or
-- not): what each service period should bill. One row per account, period and line_key.
--   flat_fee            per subscription segment: base_fee_minor * segment_days / period_days
--   usage               per subscription segment and category with metered usage
--   reserved            per subscription segment and category with reserved volume
--   discount            per discount valid in the period (negative)
--   commitment_true_up  minimum commitment not reached by the period's net charges
-- Each line is rounded once, by the rounding mode of its contract (the subscription; for
-- discounts and the commitment, the subscription in force at the end of the period).
with

segments as (
    select * from {{ ref('int_subscription_periods') }}
),

rated as (
    select * from {{ ref('int_usage_rated') }}
),

periods as (
    select * from {{ ref('int_billing_periods') }}
),

discounts as (
    select * from {{ ref('int_billing_discounts_snapshot') }}
),

commitments as (
    select * from {{ ref('int_billing_commitments_snapshot') }}
),

accounts as (
    select * from {{ ref('int_billing_accounts_snapshot') }}
),

account_modes as (
    select
        account_id,
        period,
        rounding_mode,
        row_number() over (partition by account_id, period order by segment_end desc, subscription_id desc) as rn
    from segments
),

flat_fee_lines as (
    select
        account_id,
        period,
        {{ dbt.concat(["subscription_id", "'|base_fee|flat_fee'"]) }} as line_key,
        'flat_fee' as line_type,
        'base_fee' as category,
        subscription_id,
        plan_id,
        currency,
        cast(1 as {{ dbt.type_bigint() }}) as quantity,
        {{ round_div('base_fee_minor * segment_days', 'period_days', 'rounding_mode') }} as amount_minor
    from segments
    where
        plan_currency = currency
        and base_fee_minor is not null
),

usage_lines as (
    select
        account_id,
        period,
        {{ dbt.concat(["subscription_id", "'|'", "category", "'|usage'"]) }} as line_key,
        'usage' as line_type,
        category,
        subscription_id,
        plan_id,
        currency,
        metered_quantity as quantity,
        amount_minor
    from rated
    where
        subscription_id is not null
        and metered_quantity > 0
),

reserved_lines as (
    select
        account_id,
        period,
        {{ dbt.concat(["subscription_id", "'|'", "category", "'|reserved'"]) }} as line_key,
        'reserved' as line_type,
        category,
        subscription_id,
        plan_id,
        currency,
        reserved_quantity as quantity,
        reserved_amount_minor as amount_minor
    from rated
    where
        is_priced
        and reserved_quantity > 0
),

charges as (
    select * from flat_fee_lines
    union all
    select * from usage_lines
    union all
    select * from reserved_lines
),

account_periods as (
    select
        charges.account_id,
        charges.period,
        periods.period_start,
        periods.period_end,
        max(charges.currency) as currency
    from charges
    inner join periods
        on charges.period = periods.period
    group by charges.account_id, charges.period, periods.period_start, periods.period_end
),

discount_windows as (
    select
        discounts.discount_id,
        discounts.category as discount_category,
        discounts.percent_off,
        discounts.amount_off_minor,
        discounts.currency as discount_currency,
        account_periods.account_id,
        account_periods.period,
        account_periods.currency,
        {{ dbt.datediff('account_periods.period_start', 'account_periods.period_end', 'day') }}             as period_days,
        {{ dbt.datediff(
            "case when discounts.valid_from > account_periods.period_start then discounts.valid_from else account_periods.period_start end",
            "case when discounts.valid_to is not null and discounts.valid_to < account_periods.period_end then discounts.valid_to else account_periods.period_end end",
            'day') }} as overlap_days
    from discounts
    inner join account_periods
        on
            discounts.account_id = account_periods.account_id
            and discounts.valid_from < account_periods.period_end
            and (discounts.valid_to is null or discounts.valid_to > account_periods.period_start)
),

discount_bases as (
    select
        discount_windows.discount_id,
        discount_windows.account_id,
        discount_windows.period,
        discount_windows.currency,
        discount_windows.discount_currency,
        discount_windows.percent_off,
        discount_windows.amount_off_minor,
        discount_windows.overlap_days,
        discount_windows.period_days,
        coalesce(account_modes.rounding_mode, 'half_even') as rounding_mode,
        coalesce(sum(charges.amount_minor), 0) as eligible_minor
    from discount_windows
    left join charges
        on
            discount_windows.account_id = charges.account_id
            and discount_windows.period = charges.period
            and (discount_windows.discount_category is null or discount_windows.discount_category = charges.category)
    left join account_modes
        on
            discount_windows.account_id = account_modes.account_id
            and discount_windows.period = account_modes.period
            and account_modes.rn = 1
    where discount_windows.overlap_days > 0
    group by
        discount_windows.discount_id,
        discount_windows.account_id,
        discount_windows.period,
        discount_windows.currency,
        discount_windows.discount_currency,
        discount_windows.percent_off,
        discount_windows.amount_off_minor,
        discount_windows.overlap_days,
        discount_windows.period_days,
        account_modes.rounding_mode
),

discount_amounts as (
    select
        discount_bases.*,
        case
            when discount_bases.percent_off is not null
                then
                    {{ round_div('percent_off * eligible_minor * overlap_days', '100 * period_days', 'rounding_mode') }}
            when discount_bases.amount_off_minor is not null
                and discount_bases.discount_currency = discount_bases.currency
                then
                    least(
                        discount_bases.eligible_minor,
                        {{ round_div('amount_off_minor * overlap_days', 'period_days', 'rounding_mode') }}
                    )
            else 0
        end as discount_minor
    from discount_bases
    where discount_bases.eligible_minor > 0
),

discount_lines as (
    select
        account_id,
        period,
        {{ dbt.concat(["'discount|'", "discount_id"]) }} as line_key,
        'discount' as line_type,
        'discount' as category,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        cast(null as {{ dbt.type_string() }}) as plan_id,
        currency,
        cast(1 as {{ dbt.type_bigint() }}) as quantity,
        -discount_minor as amount_minor
    from discount_amounts
    where discount_minor > 0
),

commitment_minimums as (
    select
        commitments.account_id,
        periods.period,
        sum(
            {{ round_div(
                'commitments.minimum_minor * ' ~ dbt.datediff(
                    "case when commitments.starts_on > periods.period_start then commitments.starts_on else periods.period_start end",
                    "case when commitments.ends_on is not null and commitments.ends_on < periods.period_end then commitments.ends_on else periods.period_end end",
                    'day'),
                dbt.datediff('periods.period_start', 'periods.period_end', 'day'),
                "coalesce(account_modes.rounding_mode, 'half_even')") }}
        ) as minimum_minor
    from commitments
    inner join periods
        on
            commitments.starts_on < periods.period_end
            and (commitments.ends_on is null or commitments.ends_on > periods.period_start)
    inner join accounts
        on
            commitments.account_id = accounts.account_id
            and commitments.currency = accounts.currency
    left join account_modes
        on
            commitments.account_id = account_modes.account_id
            and periods.period = account_modes.period
            and account_modes.rn = 1
    group by commitments.account_id, periods.period
),

net_charges as (
    select
        account_id,
        period,
        sum(amount_minor) as net_minor
    from (
        select
            account_id,
            period,
            amount_minor
        from charges
        union all
        select
            account_id,
            period,
            amount_minor
        from discount_lines
    ) as priced
    group by account_id, period
),

commitment_lines as (
    select
        commitment_minimums.account_id,
        commitment_minimums.period,
        'commitment' as line_key,
        'commitment_true_up' as line_type,
        'commitment' as category,
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        cast(null as {{ dbt.type_string() }}) as plan_id,
        accounts.currency,
        cast(1 as {{ dbt.type_bigint() }}) as quantity,
        commitment_minimums.minimum_minor - coalesce(net_charges.net_minor, 0) as amount_minor
    from commitment_minimums
    inner join accounts
        on commitment_minimums.account_id = accounts.account_id
    left join net_charges
        on
            commitment_minimums.account_id = net_charges.account_id
            and commitment_minimums.period = net_charges.period
    where commitment_minimums.minimum_minor > coalesce(net_charges.net_minor, 0)
),

lines as (
    select * from charges
    union all
    select * from discount_lines
    union all
    select * from commitment_lines
)

select
    {{ dbt.concat(["lines.account_id", "'|'", "lines.period", "'|'", "lines.line_key"]) }} as current_line_id,
    lines.account_id,
    lines.period,
    periods.period_start,
    periods.period_end,
    lines.line_key,
    lines.line_type,
    lines.category,
    lines.subscription_id,
    lines.plan_id,
    lines.currency,
    lines.quantity,
    cast(lines.amount_minor as {{ dbt.type_bigint() }}) as amount_minor
from lines
inner join periods
    on lines.period = periods.period
