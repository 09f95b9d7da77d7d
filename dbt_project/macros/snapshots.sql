{#
    Rows of the latest loaded batch of a full-snapshot raw table (billing accounts, plans,
    subscriptions, price books). "Latest" is by the batch ledger's interval_end, then
    loaded_at, then batch id, among batches with status 'loaded' that wrote rows to the table.
#}
{% macro latest_snapshot_rows(staging_model) -%}
with

snapshot_rows as (
    select * from {{ ref(staging_model) }}
),

loaded_batches as (
    select
        batch_id,
        interval_end,
        loaded_at
    from {{ ref('stg_ledger__batches') }}
    where status = 'loaded'
),

candidate_batches as (
    select
        loaded_batches.batch_id,
        row_number() over (
            order by
                loaded_batches.interval_end desc,
                coalesce(loaded_batches.loaded_at, loaded_batches.interval_end) desc,
                loaded_batches.batch_id desc
        ) as batch_rank
    from loaded_batches
    where loaded_batches.batch_id in (select distinct snapshot_rows._batch_id from snapshot_rows)
)

select snapshot_rows.*
from snapshot_rows
inner join candidate_batches
    on snapshot_rows._batch_id = candidate_batches.batch_id
where candidate_batches.batch_rank = 1
{%- endmacro %}


{#
    The latest extracted version of each object of a versioned raw table (Stripe objects can
    be pulled again, e.g. by a resync): by _extracted_at, then the batch ledger's
    interval_end, then batch id.
#}
{% macro latest_version_rows(staging_model, id_column) -%}
with

versions as (
    select * from {{ ref(staging_model) }}
),

batches as (
    select * from {{ ref('stg_ledger__batches') }}
),

ranked as (
    select
        versions.*,
        row_number() over (
            partition by versions.{{ id_column }}
            order by
                versions._extracted_at desc,
                coalesce(batches.interval_end, versions._extracted_at) desc,
                versions._batch_id desc
        ) as version_rank
    from versions
    left join batches
        on versions._batch_id = batches.batch_id
)

select * from ranked
where version_rank = 1
{%- endmacro %}
