{#
    int_metering_usage_validated is incremental by hour: every rule it applies (a copy's rank
    inside its batch, a version's rank among the valid versions of its natural key) partitions
    by hour_start, and a row's quarantine reason depends on the row and the reference data
    alone. So a run rebuilds exactly the hours int_metering_usage_changed_hours lists, from all
    of their raw rows, and the result equals a full rebuild (tests/dbt/test_incremental.py;
    the bench compares every mart).

    A row with no hour_start belongs to the hour `metering_no_hour()` stands for.
#}
{% macro metering_partition_hour(column) -%}
    coalesce({{ column }}, {{ metering_no_hour() }})
{%- endmacro %}

{% macro metering_no_hour() -%}
    cast('0001-01-01 00:00:00' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#
    The quarantine reason a metering row gets from itself and the reference data (the latest
    billing accounts snapshot, the categories seed, the outcomes var); NULL when it has none.
    duplicate_key, which depends on the row's copies in its batch, is applied after it.
#}
{% macro metering_row_reason(row, accounts, categories) -%}
    case
        when {{ row }}.account_id is null then 'missing_account'
        when {{ accounts }}.account_id is null then 'unknown_account'
        when {{ row }}.quantity < 0 then 'negative_quantity'
        when {{ categories }}.category is null then 'unknown_category'
        when
            {{ row }}.outcome is null
            or {{ row }}.outcome not in ({{ quoted_list(var('metering_outcomes')) }})
            then 'unknown_outcome'
    end
{%- endmacro %}

{#
    A fingerprint of the code that shapes int_metering_usage_validated's rows (the model, its
    change list, the staging models it reads, the SQL the macros above and the type macros
    render, dbt's version and the engine). Each row carries it; a row
    with another fingerprint makes its hour rebuild, so a deploy that changes that code
    rebuilds the whole table on its first run.
#}
{% macro metering_code_version() -%}
    {%- if not execute -%}{{ return("''") }}{%- endif -%}
    {%- set parts = [] -%}
    {%- for name in ["int_metering_usage_validated", "int_metering_usage_changed_hours",
                     "stg_metering__usage_hourly", "stg_ledger__batches"] -%}
        {%- do parts.append(graph.nodes["model." ~ project_name ~ "." ~ name]["checksum"]["checksum"]) -%}
    {%- endfor -%}
    {#- macros are not in `graph`: what they render stands for them (and for the var) -#}
    {%- do parts.append(metering_row_reason("r", "a", "c") ~ metering_partition_hour("h")) -%}
    {#- the model's rows are a macro's: its source stands for it (not its rendering, which
        names relations and so the database) -#}
    {%- set rows_sql = metering_validated_rows.macro.macro_sql -%}
    {%- if rows_sql is not string or "row_number()" not in rows_sql -%}
        {{ exceptions.raise_compiler_error("metering_code_version: cannot read the source of "
                                           "macro metering_validated_rows") }}
    {%- endif -%}
    {%- do parts.append(rows_sql) -%}
    {#- and what the staging models' type macros render to, on this engine and dbt -#}
    {%- do parts.append(dbt_version ~ "|" ~ target.type ~ "|" ~ dbt.type_timestamp() ~ "|"
                        ~ dbt.type_string() ~ "|" ~ dbt.type_bigint()) -%}
    {{ return("'" ~ local_md5(parts | join("|")) ~ "'") }}
{%- endmacro %}

{#
    pre-hook of int_metering_usage_validated: on an incremental run, delete the hours it is
    about to rebuild (in the model's transaction, before its rows are inserted).
#}
{% macro delete_rebuilt_metering_hours() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ metering_partition_hour('hour_start') }} in (
            select partition_hour from {{ ref('int_metering_usage_changed_hours') }}
        )
    {%- endif -%}
{%- endmacro %}

{#
    One row per combination of `columns`, over the whole model (not just the hours a build
    rebuilt: a failed night must not leave a duplicate that later nights no longer look at).
#}
{% test unique_combination(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#
    How many raw rows one statement of int_metering_usage_validated's build ranks at most
    (var metering_slice_rows): its two window functions rank every row of the hours they
    are given, and over 300M rows at once DuckDB ran out of a 3 GiB memory limit. Every rule
    partitions by hour, so a build in slices of whole hours equals a build in one statement.
#}
{% macro metering_slice_rows() -%}
    {%- set rows = var('metering_slice_rows') -%}
    {%- if rows is not number or rows is sameas true or rows is sameas false
           or rows != rows | int or rows < 1 -%}
        {{ exceptions.raise_compiler_error(
            "var metering_slice_rows must be a whole number of rows of at least 1, not "
            ~ rows | string) }}
    {%- endif -%}
    {{ return(rows | int) }}
{%- endmacro %}

{#
    The build slices of this run, in order: [build_slice, first hour, last hour] from
    int_metering_usage_changed_hours. Empty when no hour changed (and at parse time).
#}
{% macro metering_build_slices() -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set hours = ref('int_metering_usage_changed_hours') -%}
    {%- if adapter.get_relation(database=hours.database, schema=hours.schema,
                                identifier=hours.identifier) is none -%}
        {#- compiled without a build (dbt compile, docs, a linter): nothing to slice -#}
        {{ return([]) }}
    {%- endif -%}
    {%- set found = run_query(
        "select build_slice, min(partition_hour), max(partition_hour) from "
        ~ hours ~ " group by build_slice order by build_slice"
    ) -%}
    {{ return(found.rows | map('list') | list) }}
{%- endmacro %}

{#
    The columns of int_metering_usage_validated, in order.
#}
{% macro metering_validated_columns() -%}
    {{ return(["hour_start", "account_id", "project_id", "category", "outcome", "quantity",
               "updated_at", "_batch_id", "_extracted_at", "batch_interval_end", "copy_number",
               "quarantine_reason", "is_valid", "is_current_version", "_code_version"]) }}
{%- endmacro %}

{#
    The rows of int_metering_usage_validated for the hours of one build slice
    ([build_slice, first hour, last hour], from metering_build_slices(); none: no hour), from
    all of their raw rows. The bounds repeat the slice as a plain range on hour_start, which
    the engine can use to skip raw data; the list of hours decides.
#}
{% macro metering_validated_rows(build_slice, code_version) -%}
with

usage_rows as (
    select * from {{ ref('stg_metering__usage_hourly') }}
    {% if build_slice is none -%}
    where 1 = 0
    {%- else -%}
    where
        {{ metering_partition_hour('hour_start') }} in (
            select partition_hour from {{ ref('int_metering_usage_changed_hours') }}
            where build_slice = {{ build_slice[0] }}
        )
        and (
            hour_start is null
            or hour_start between cast('{{ build_slice[1] }}' as {{ dbt.type_timestamp() }})
            and cast('{{ build_slice[2] }}' as {{ dbt.type_timestamp() }})
        )
    {%- endif %}
),

batches as (
    select * from {{ ref('stg_ledger__batches') }}
),

accounts as (
    select * from {{ ref('int_billing_accounts_snapshot') }}
),

categories as (
    select * from {{ ref('categories') }}
),

numbered as (
    select
        usage_rows.*,
        batches.interval_end as batch_interval_end,
        -- copies identical on natural key and updated_at inside one batch: keep the first
        row_number() over (
            partition by
                usage_rows._batch_id,
                usage_rows.hour_start,
                usage_rows.account_id,
                usage_rows.project_id,
                usage_rows.category,
                usage_rows.outcome,
                usage_rows.updated_at
            order by usage_rows.quantity asc, usage_rows._extracted_at asc
        ) as copy_number
    from usage_rows
    left join batches
        on usage_rows._batch_id = batches.batch_id
),

reasoned as (
    select
        numbered.*,
        coalesce(
            {{ metering_row_reason('numbered', 'accounts', 'categories') }},
            case when numbered.copy_number > 1 then 'duplicate_key' end
        ) as quarantine_reason
    from numbered
    left join accounts
        on numbered.account_id = accounts.account_id
    left join categories
        on numbered.category = categories.category
),

versioned as (
    select
        reasoned.*,
        row_number() over (
            partition by
                reasoned.quarantine_reason is null,
                reasoned.hour_start,
                reasoned.account_id,
                reasoned.project_id,
                reasoned.category,
                reasoned.outcome
            order by
                reasoned.updated_at desc,
                coalesce(reasoned.batch_interval_end, reasoned._extracted_at) desc,
                reasoned._batch_id desc,
                reasoned.quantity desc
        ) as version_rank
    from reasoned
)

select
    hour_start,
    account_id,
    project_id,
    category,
    outcome,
    quantity,
    updated_at,
    _batch_id,
    _extracted_at,
    batch_interval_end,
    copy_number,
    quarantine_reason,
    quarantine_reason is null as is_valid,
    quarantine_reason is null and version_rank = 1 as is_current_version,
    {{ code_version }} as _code_version
from versioned
{%- endmacro %}

{#
    post-hook of int_metering_usage_validated: the model's own statement built the first build
    slice; insert the others, one statement each (in the model's transaction).
#}
{% macro insert_remaining_metering_slices() -%}
    {%- set slices = metering_build_slices() -%}
    {%- set columns = metering_validated_columns() | join(", ") -%}
    {%- for build_slice in slices[1:] -%}
        {%- do log("int_metering_usage_validated: build slice " ~ (loop.index + 1) ~ " of "
                   ~ slices | length ~ " (" ~ build_slice[1] ~ " to " ~ build_slice[2] ~ ")") -%}
        {%- do run_query("insert into " ~ this ~ " (" ~ columns ~ ")\n"
                         ~ metering_validated_rows(build_slice, metering_code_version())) -%}
    {%- endfor -%}
{%- endmacro %}
