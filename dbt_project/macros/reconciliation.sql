{#- Reconciliation rules shared by the rec_* marts. -#}

{#- The statuses that are not findings (DESIGN.md's vocabulary). -#}
{% macro ok_statuses() -%}
    ('matched', 'within_tolerance', 'late_pending', 'explained')
{%- endmacro %}

{#- A data category's absolute / relative usage tolerance: [reconcile] tolerance_by_category in
    meterline.toml, else tolerance_abs / tolerance_rel (passed in as dbt vars by meterline). -#}
{% macro usage_tolerance_abs(category_expr) -%}
    {%- set by_category = var('tolerance_by_category', {}) -%}
    {%- if by_category -%}
    case
        {%- for category, tolerance in by_category.items() %}
        when {{ category_expr }} = '{{ category }}' then {{ tolerance.get('abs', var('tolerance_abs')) | int }}
        {%- endfor %}
        else {{ var('tolerance_abs') | int }}
    end
    {%- else -%}
    {{ var('tolerance_abs') | int }}
    {%- endif -%}
{%- endmacro %}

{% macro usage_tolerance_rel(category_expr) -%}
    {%- set by_category = var('tolerance_by_category', {}) -%}
    {%- if by_category -%}
    case
        {%- for category, tolerance in by_category.items() %}
        when {{ category_expr }} = '{{ category }}'
            then cast('{{ tolerance.get("rel", var("tolerance_rel")) }}' as {{ money_type() }})
        {%- endfor %}
        else cast('{{ var("tolerance_rel") }}' as {{ money_type() }})
    end
    {%- else -%}
    cast('{{ var("tolerance_rel") }}' as {{ money_type() }})
    {%- endif -%}
{%- endmacro %}

{#- true when two quantities of a category differ by no more than its tolerance -#}
{% macro within_usage_tolerance(category_expr, left, right) -%}
    (
        abs({{ left }} - {{ right }}) <= {{ usage_tolerance_abs(category_expr) }}
        or abs({{ left }} - {{ right }})
        <= {{ usage_tolerance_rel(category_expr) }} * greatest(abs({{ left }}), abs({{ right }}))
    )
{%- endmacro %}

{#- |left - right| / max(|left|, |right|), NULL when either is NULL, 0 when both are 0 -#}
{% macro relative_difference(left, right) -%}
    case
        when {{ left }} is null or {{ right }} is null then null
        when {{ left }} = {{ right }} then cast(0 as {{ money_type() }})
        else cast(abs({{ left }} - {{ right }}) as {{ money_type() }})
            / cast(greatest(abs({{ left }}), abs({{ right }})) as {{ money_type() }})
    end
{%- endmacro %}

{#- The id of an accepted explanation (meterline explain) that covers a row of `check_name`
    at as_of: same check, every key field given by the explanation equal to the row's (a NULL
    field in the explanation matches anything), not revoked, and as_of before its expiry. The
    lowest id when several do; NULL when none does. `keys` maps explanation key field (account_id,
    category, period, day, object_id) to the row's SQL expression (as text). -#}
{% macro explanation_for(check_name, keys, as_of_expr=none) -%}
    {%- set as_of_expr = as_of_expr or '(select ledger_as_of.as_of from ' ~ ref('int_ledger_as_of') ~ ' as ledger_as_of)' -%}
    (
        select min(explanations.explanation_id)
        from {{ ref('stg_ledger__recon_explanations') }} as explanations
        where
            explanations.check_name = '{{ check_name }}'
            and explanations.revoked_at is null
            and (explanations.expires_at is null or {{ as_of_expr }} < explanations.expires_at)
            {%- for field in ['account_id', 'category', 'period', 'day', 'object_id'] %}
            {%- if field in keys %}
            and (explanations.{{ field }} is null or explanations.{{ field }} = {{ keys[field] }})
            {%- else %}
            and explanations.{{ field }} is null
            {%- endif %}
            {%- endfor %}
    )
{%- endmacro %}

{#- A row's final status: an explanation on file turns a finding status into 'explained'. -#}
{% macro explained_status(status_expr, explanation_id_expr) -%}
    case
        when {{ status_expr }} not in {{ ok_statuses() }} and {{ explanation_id_expr }} is not null
            then 'explained'
        else {{ status_expr }}
    end
{%- endmacro %}
