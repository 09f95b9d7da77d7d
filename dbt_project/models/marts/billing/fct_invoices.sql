-- noqa: disable=RF03,RF04,LT05
-- One row per invoice (account and billing period): total = sum of its rounded lines. State:
-- draft (not issued yet, restated every night), issued or void (from the ledger). version: an
-- issued invoice keeps the version it was issued with; a draft's version goes up each time a
-- nightly finds its lines changed (ledger.invoice_versions, written after each build).
with

lines as (
    select * from {{ ref('fct_invoice_lines') }}
),

issued_invoices as (
    select * from {{ ref('stg_ledger__issued_invoices') }}
),

versions as (
    select
        invoice_id,
        version,
        content_hash,
        row_number() over (partition by invoice_id order by version desc) as version_rank
    from {{ ref('stg_ledger__invoice_versions') }}
),

invoices as (
    select
        invoice_id,
        account_id,
        period,
        period_start,
        period_end,
        max(currency) as currency,
        count(distinct currency) as currency_count,
        sum(amount_minor) as total_minor,
        count(*) as line_count,
        is_period_locked,
        state,
        {{ dbt.hash(dbt.listagg(
            dbt.concat(["line_key", "':'", dbt.cast("quantity", dbt.type_string()), "':'", dbt.cast("amount_minor", dbt.type_string())]),
            "'|'", "order by line_key")) }} as lines_hash
    from lines
    group by
        invoice_id,
        account_id,
        period,
        period_start,
        period_end,
        is_period_locked,
        state
)

select
    invoices.invoice_id,
    invoices.account_id,
    invoices.period,
    invoices.period_start,
    invoices.period_end,
    invoices.currency,
    invoices.currency_count,
    invoices.total_minor,
    invoices.line_count,
    invoices.is_period_locked,
    invoices.state,
    case
        when invoices.state <> 'draft' then coalesce(issued_invoices.content_hash, invoices.lines_hash)
        else invoices.lines_hash
    end as content_hash,
    case
        when invoices.state <> 'draft' then issued_invoices.version
        when versions.version is null then 1
        when versions.content_hash = invoices.lines_hash then versions.version
        else versions.version + 1
    end as version
from invoices
left join issued_invoices
    on invoices.invoice_id = issued_invoices.invoice_id
left join versions
    on
        invoices.invoice_id = versions.invoice_id
        and versions.version_rank = 1
