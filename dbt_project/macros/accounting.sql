{#- The accounting period whose close freezes a row of `period_expr` (YYYY-MM): the period itself,
    or, for a period before the first billing period (a prepaid credit sold before the ingested
    history's first full month), the first billing period - its first close freezes and exports
    that prehistory with it, so no locked opening balance can move afterwards. -#}
{% macro accounting_lock_period(period_expr) -%}
    case
        when {{ period_expr }} < (select min(first_periods.period) from {{ ref('int_billing_periods') }} as first_periods)
            then (select min(first_periods.period) from {{ ref('int_billing_periods') }} as first_periods)
        else {{ period_expr }}
    end
{%- endmacro %}
