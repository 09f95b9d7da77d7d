-- The billing system's count per day, account and category: the latest version by
-- updated_at, and how many rows of one batch carry that version (more than one is a
-- duplicate in billing).
with

counters as (
    select * from {{ ref('stg_billing__usage_counters') }}
),

batches as (
    select * from {{ ref('stg_ledger__batches') }}
),

ranked as (
    select
        counters.*,
        max(counters.updated_at) over (
            partition by counters.usage_day, counters.account_id, counters.category
        ) as latest_updated_at,
        row_number() over (
            partition by counters.usage_day, counters.account_id, counters.category
            order by
                counters.updated_at desc,
                coalesce(batches.interval_end, counters._extracted_at) desc,
                counters._batch_id desc,
                counters.quantity desc
        ) as version_rank
    from counters
    left join batches
        on counters._batch_id = batches.batch_id
),

copies_per_batch as (
    select
        usage_day,
        account_id,
        category,
        _batch_id,
        count(*) as rows_at_latest
    from ranked
    where updated_at = latest_updated_at
    group by usage_day, account_id, category, _batch_id
),

copies as (
    select
        usage_day,
        account_id,
        category,
        max(rows_at_latest) as rows_at_latest
    from copies_per_batch
    group by usage_day, account_id, category
)

select
    {{ dbt.concat([format_day('ranked.usage_day'), "'|'", "ranked.account_id", "'|'", "ranked.category"]) }}
        as counter_key,
    ranked.usage_day,
    ranked.account_id,
    ranked.category,
    ranked.quantity,
    ranked.updated_at,
    ranked._batch_id,
    copies.rows_at_latest
from ranked
inner join copies
    on
        ranked.usage_day = copies.usage_day
        and ranked.account_id = copies.account_id
        and ranked.category = copies.category
where ranked.version_rank = 1
