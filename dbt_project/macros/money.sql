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


{# An exact double type for the first guess of floor_div (DuckDB's `float` is 4 bytes). #}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'meterline')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}


{#
    floor(num / den), exact, for num >= 0 and den > 0 (integers or DECIMALs). Division of
    DECIMALs is not exact on every engine (DuckDB returns a DOUBLE), so the quotient is guessed
    in double precision and then corrected by one with exact multiplications:
      q0 = floor(num / den) in doubles; q = q0 + 1 if (q0 + 1) * den <= num, q0 - 1 if
      q0 * den > num, else q0.
    Exact while the quotient is below 2^50 (a double's error is then below one unit).
    Returns BIGINT.
#}
{% macro floor_div(num, den) -%}
    {%- set q0 -%}
        cast(floor(cast({{ num }} as {{ type_double() }}) / cast({{ den }} as {{ type_double() }})) as {{ dbt.type_bigint() }})
    {%- endset -%}
    cast(
        {{ q0 }} + case
            when ({{ q0 }} + 1) * ({{ den }}) <= ({{ num }}) then 1
            when {{ q0 }} * ({{ den }}) > ({{ num }}) then -1
            else 0
        end
        as {{ dbt.type_bigint() }}
    )
{%- endmacro %}


{#
    num / den rounded once to an integer, exact, for num >= 0 and den > 0, by `mode` (a SQL
    expression or a quoted literal): 'half_up' rounds a half up, anything else half to even.
    Returns BIGINT.
#}
{% macro round_div(num, den, mode="'half_even'") -%}
    {%- set q = floor_div(num, den) -%}
    {%- set twice_rest = '2 * ((' ~ num ~ ') - ' ~ q ~ ' * (' ~ den ~ '))' -%}
    cast(
        {{ q }} + case
            when {{ twice_rest }} > ({{ den }}) then 1
            when {{ twice_rest }} < ({{ den }}) then 0
            when {{ mode }} = 'half_up' then 1
            when mod({{ q }}, 2) = 0 then 0
            else 1
        end
        as {{ dbt.type_bigint() }}
    )
{%- endmacro %}


{#
    An unrounded non-negative amount in minor units (a DECIMAL) rounded once to an integer by
    the contract's rounding mode: 'half_up' or half to even (the default). Returns BIGINT.
#}
{% macro round_minor(expr, mode) -%}
    case
        when {{ mode }} = 'half_up' then cast(floor(({{ expr }}) + 0.5) as {{ dbt.type_bigint() }})
        else {{ round_half_even(expr) }}
    end
{%- endmacro %}

{#
    A Stripe API amount as the ledger's integer minor units. Stripe's minor units are the ISO
    4217 ones except for a few currencies it keeps as two-decimal while ISO says zero (ISK: an
    amount of 1,500 ISK is 150000 in Stripe's API, and must be a multiple of 100). The push sends
    those × factor (exports/stripe_push.py, meterline/stripe_api.py STRIPE_AMOUNT_FACTOR); this
    takes the factor back off, so Stripe and the ledger compare in one unit. The factors are the
    var stripe_amount_factors ({currency: factor}).
#}
{% macro stripe_minor(amount, currency='currency') -%}
    {%- set factors = var('stripe_amount_factors', {}) -%}
    {%- if factors -%}
    case upper({{ currency }})
        {%- for code, factor in factors.items() | sort %}
        when '{{ code | upper }}' then {{ floor_div('cast(' ~ amount ~ ' as ' ~ dbt.type_bigint() ~ ')', factor | int) }}
        {%- endfor %}
        else cast({{ amount }} as {{ dbt.type_bigint() }})
    end
    {%- else -%}
    cast({{ amount }} as {{ dbt.type_bigint() }})
    {%- endif -%}
{%- endmacro %}
