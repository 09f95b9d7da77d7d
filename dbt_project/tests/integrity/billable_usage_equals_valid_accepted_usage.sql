-- fct_billable_usage.metered_quantity is exactly the latest valid `accepted` metering usage:
-- per account and category, and in total. Returns the rows that disagree.
with

billed as (
    select
        account_id,
        category,
        sum(metered_quantity) as quantity
    from {{ ref('fct_billable_usage') }}
    group by account_id, category
),

metered as (
    select
        account_id,
        category,
        sum(quantity) as quantity
    from {{ ref('int_metering_usage_validated') }}
    where
        is_current_version
        and is_valid
        and outcome = 'accepted'
    group by account_id, category
)

select
    coalesce(billed.account_id, metered.account_id) as account_id,
    coalesce(billed.category, metered.category) as category,
    billed.quantity as billed_quantity,
    metered.quantity as metered_quantity
from billed
full outer join metered
    on
        billed.account_id = metered.account_id
        and billed.category = metered.category
where
    billed.quantity is null
    or metered.quantity is null
    or billed.quantity <> metered.quantity
