-- Row counts across layers: what each layer received against what the layer before it handed
-- over. Every pair must be equal:
--   batch_ledger -> raw        per source: the rows the loader says it wrote (loaded batches;
--                               Stripe's include its resyncs and its cursor rows) against the
--                               rows in that source's raw tables
--   raw -> staging             per metering table: staging renames, never drops a row
--   staging -> intermediate    metering: every staged row is validated (kept or quarantined)
--   intermediate -> quarantine metering: every row validation held back is in fct_quarantine
{%- set raw_tables = {
    'metering': ['metering_usage_hourly'],
    'billing': ['billing_accounts', 'billing_plans', 'billing_subscriptions', 'billing_price_books',
                'billing_usage_counters', 'billing_credits', 'billing_commitments', 'billing_discounts',
                'billing_spike_releases'],
    'stripe': ['stripe_customers', 'stripe_invoices', 'stripe_invoice_lines', 'stripe_charges',
               'stripe_refunds', 'stripe_balance_transactions', 'stripe_payouts', 'stripe_subscriptions',
               'stripe_disputes', 'stripe_credit_notes', 'stripe_events', 'stripe_cursor'],
} %}
with

ledger_rows as (
    -- a Stripe resync is a Stripe batch like the nightly ones
    select
        case when batch_source = 'stripe_resync' then 'stripe' else batch_source end as source_name,
        sum(row_count) as row_count
    from {{ ref('stg_ledger__batches') }}
    where status = 'loaded'
    group by case when batch_source = 'stripe_resync' then 'stripe' else batch_source end
),

raw_rows as (
    {%- for source_name, tables in raw_tables.items() %}
        {%- for table in tables %}
            select
                '{{ source_name }}' as source_name,
                count(*) as row_count
            from {{ source('raw', table) }}
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

raw_by_source as (
    select
        source_name,
        sum(row_count) as row_count
    from raw_rows
    group by source_name
),

sources as (
    select 'metering' as source_name
    union all
    select 'billing' as source_name
    union all
    select 'stripe' as source_name
),

pairs as (
    select
        sources.source_name,
        'batch_ledger' as upstream_layer,
        'raw' as downstream_layer,
        coalesce(ledger_rows.row_count, 0) as upstream_rows,
        coalesce(raw_by_source.row_count, 0) as downstream_rows
    from sources
    left join ledger_rows
        on sources.source_name = ledger_rows.source_name
    left join raw_by_source
        on sources.source_name = raw_by_source.source_name
    union all
    select
        'metering' as source_name,
        'raw' as upstream_layer,
        'staging' as downstream_layer,
        (select count(*) from {{ source('raw', 'metering_usage_hourly') }}) as upstream_rows,
        (select count(*) from {{ ref('stg_metering__usage_hourly') }}) as downstream_rows
    union all
    select
        'metering' as source_name,
        'staging' as upstream_layer,
        'intermediate' as downstream_layer,
        (select count(*) from {{ ref('stg_metering__usage_hourly') }}) as upstream_rows,
        (select count(*) from {{ ref('int_metering_usage_validated') }}) as downstream_rows
    union all
    select
        'metering' as source_name,
        'intermediate' as upstream_layer,
        'quarantine' as downstream_layer,
        (
            select count(*) from {{ ref('int_metering_usage_validated') }}
            where quarantine_reason is not null
        ) as upstream_rows,
        (
            select count(*) from {{ ref('fct_quarantine') }}
            where raw_table = 'metering_usage_hourly' and row_json is null
        ) as downstream_rows
)

select
    {{ dbt.concat(["source_name", "'|'", "upstream_layer", "'|'", "downstream_layer"]) }} as layer_pair_id,
    source_name,
    upstream_layer,
    downstream_layer,
    cast(upstream_rows as {{ dbt.type_bigint() }}) as upstream_rows,
    cast(downstream_rows as {{ dbt.type_bigint() }}) as downstream_rows,
    case when upstream_rows = downstream_rows then 'matched' else 'drift' end as status
from pairs
