-- What each account earned per service period and product, as known now: the revenue lines of
-- every invoice that is not void (issued or draft, including adjustment lines, which carry the
-- service period they correct), net of what reduces them. Products are the line categories:
-- base_fee (flat recurring fees), commitment (true-ups) and each data category (usage and
-- reserved volume). Reductions - discounts, and credits that were not paid for (promotional,
-- goodwill) - are allocated to the products they reduce, in proportion to their gross amounts
-- (a discount with a category only to that category), exactly: the allocated parts sum to the
-- reduction. A reduction with nothing left to reduce stays on product 'discount'.
-- Prepaid credits are not revenue here: they settle the invoice from deferred revenue.
with

lines as (
    select * from {{ ref('fct_invoice_lines') }}
    where state <> 'void'
),

credits as (
    select * from {{ ref('int_billing_credits_snapshot') }}
),

discounts as (
    select * from {{ ref('int_billing_discounts_snapshot') }}
),

keyed as (
    select
        lines.account_id,
        lines.service_period,
        lines.currency,
        lines.category,
        lines.line_type,
        lines.amount_minor,
        case
            when lines.line_type = 'adjustment'
                {%- set prefix = dbt.concat(["'adjustment|'", "lines.service_period", "'|'"]) %}
                then {{ dbt.right('lines.line_key', dbt.length('lines.line_key') ~ ' - ' ~ dbt.length(prefix)) }}
            else lines.line_key
        end as base_line_key
    from lines
),

gross as (
    select
        account_id,
        service_period,
        currency,
        category as product,
        sum(amount_minor) as gross_minor
    from keyed
    where category not in ('discount', 'credit')
    group by account_id, service_period, currency, category
),

reductions as (
    select
        keyed.account_id,
        keyed.service_period,
        keyed.currency,
        keyed.base_line_key as reduction_key,
        max(discounts.category) as scope_category,
        sum(keyed.amount_minor) as reduction_minor
    from keyed
    left join discounts
        on keyed.base_line_key = {{ dbt.concat(["'discount|'", "discounts.discount_id"]) }}
    left join credits
        on keyed.base_line_key = {{ dbt.concat(["'credit|'", "credits.credit_id"]) }}
    where
        keyed.category = 'discount'
        or (keyed.category = 'credit' and coalesce(credits.credit_reason, '') <> 'prepaid')
    group by keyed.account_id, keyed.service_period, keyed.currency, keyed.base_line_key
),

-- each reduction against the products in its scope that have a positive gross amount
targets as (
    select
        reductions.account_id,
        reductions.service_period,
        reductions.currency,
        reductions.reduction_key,
        reductions.reduction_minor,
        gross.product,
        gross.gross_minor,
        sum(gross.gross_minor) over (
            partition by reductions.account_id, reductions.service_period, reductions.currency, reductions.reduction_key
        ) as scope_minor,
        sum(gross.gross_minor) over (
            partition by reductions.account_id, reductions.service_period, reductions.currency, reductions.reduction_key
            order by gross.product
            rows between unbounded preceding and current row
        ) as cumulative_minor
    from reductions
    inner join gross
        on
            reductions.account_id = gross.account_id
            and reductions.service_period = gross.service_period
            and reductions.currency = gross.currency
            and (reductions.scope_category is null or reductions.scope_category = gross.product)
            and gross.gross_minor > 0
),

-- largest-remainder free exact split: part_i = r*C_i/S - r*C_(i-1)/S, each floored on |r|
allocated as (
    select
        account_id,
        service_period,
        currency,
        product,
        reduction_key,
        case when reduction_minor < 0 then -1 else 1 end
        * (
            {%- set reduction = 'cast(abs(reduction_minor) as decimal(38, 0))' %}
            {{ floor_div(reduction ~ ' * cumulative_minor', 'scope_minor') }}
            - {{ floor_div(reduction ~ ' * (cumulative_minor - gross_minor)', 'scope_minor') }}
        ) as allocated_minor
    from targets
),

unallocated as (
    select
        reductions.account_id,
        reductions.service_period,
        reductions.currency,
        'discount' as product,
        reductions.reduction_minor as allocated_minor
    from reductions
    where not exists (
            select 1
            from targets
            where
                targets.account_id = reductions.account_id
                and targets.service_period = reductions.service_period
                and targets.currency = reductions.currency
                and targets.reduction_key = reductions.reduction_key
        )
),

parts as (
    select
        account_id,
        service_period,
        currency,
        product,
        gross_minor as amount_minor,
        0 as reduction_minor
    from gross
    union all
    select
        account_id,
        service_period,
        currency,
        product,
        0 as amount_minor,
        allocated_minor as reduction_minor
    from allocated
    union all
    select
        account_id,
        service_period,
        currency,
        product,
        0 as amount_minor,
        allocated_minor as reduction_minor
    from unallocated
)

select
    {{ dbt.concat(["account_id", "'|'", "service_period", "'|'", "currency", "'|'", "product"]) }} as revenue_key,
    account_id,
    service_period,
    currency,
    product,
    cast(sum(amount_minor) as {{ dbt.type_bigint() }}) as gross_minor,
    cast(sum(reduction_minor) as {{ dbt.type_bigint() }}) as reduction_minor,
    cast(sum(amount_minor) + sum(reduction_minor) as {{ dbt.type_bigint() }}) as net_minor
from parts
group by account_id, service_period, currency, product
