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
