{#
    Date and period text in one format on every engine.
    format_period(ts)  -> 'YYYY-MM'    (billing period of a date or timestamp)
    format_day(d)      -> 'YYYY-MM-DD'
    period_start_of(p) -> the DATE a 'YYYY-MM' period string starts on
#}
{% macro format_period(expr) -%}
    {{ return(adapter.dispatch('format_period', 'meterline')(expr)) }}
{%- endmacro %}

{% macro default__format_period(expr) -%}
    substring(cast(cast({{ expr }} as date) as {{ dbt.type_string() }}), 1, 7)
{%- endmacro %}

{% macro duckdb__format_period(expr) -%}
    strftime(cast({{ expr }} as timestamp), '%Y-%m')
{%- endmacro %}

{% macro postgres__format_period(expr) -%}
    to_char({{ expr }}, 'YYYY-MM')
{%- endmacro %}


{% macro format_day(expr) -%}
    {{ return(adapter.dispatch('format_day', 'meterline')(expr)) }}
{%- endmacro %}

{% macro default__format_day(expr) -%}
    cast(cast({{ expr }} as date) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__format_day(expr) -%}
    strftime(cast({{ expr }} as timestamp), '%Y-%m-%d')
{%- endmacro %}

{% macro postgres__format_day(expr) -%}
    to_char({{ expr }}, 'YYYY-MM-DD')
{%- endmacro %}


{% macro period_start_of(period_expr) -%}
    {{ return(adapter.dispatch('period_start_of', 'meterline')(period_expr)) }}
{%- endmacro %}

{% macro default__period_start_of(period_expr) -%}
    cast({{ dbt.concat([period_expr, "'-01'"]) }} as date)
{%- endmacro %}


{# A value as text for human-readable detail strings; NULL reads 'none'. #}
{% macro as_text(expr) -%}
    coalesce({{ dbt.cast(expr, dbt.type_string()) }}, 'none')
{%- endmacro %}


{# A list of values as a SQL list of quoted literals: 'a', 'b' (for `in (...)`). #}
{% macro quoted_list(values) -%}
    {%- for value in values -%}
        '{{ value | replace("'", "''") }}'{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
