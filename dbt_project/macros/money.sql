{# The one type for unit prices and unrounded amounts: exact, never a float. #}
{% macro money_type() -%}
    decimal(38, 12)
{%- endmacro %}

{#
    Round a DECIMAL to an integer, half to even (banker's rounding), built from floor and mod
    so it behaves the same on every engine and never goes through a float.
      f = floor(x), d = x - f (0 <= d < 1, also for negatives)
      d > 0.5 -> f + 1; d < 0.5 -> f; d = 0.5 -> the even one of f and f + 1
    Returns BIGINT. Evaluate `expr` once per call site; it is repeated in the SQL.
#}
{% macro round_half_even(expr) -%}
    cast(
        case
            when ({{ expr }}) - floor({{ expr }}) > 0.5 then floor({{ expr }}) + 1
            when ({{ expr }}) - floor({{ expr }}) < 0.5 then floor({{ expr }})
            when mod(floor({{ expr }}), 2) = 0 then floor({{ expr }})
            else floor({{ expr }}) + 1
        end
        as {{ dbt.type_bigint() }}
    )
{%- endmacro %}
