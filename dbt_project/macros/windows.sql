{#
    running_sum(measure, partition_by, order_by): the running total of `measure` within each
    partition, in `order_by` order, up to and including the current row (month to date when
    partitioned by period and ordered by day). Rows, not a range: one row per day.
#}
{% macro running_sum(measure, partition_by, order_by) -%}
    sum({{ measure }}) over (
        partition by {{ partition_by | join(', ') }}
        order by {{ order_by }}
        rows between unbounded preceding and current row
    )
{%- endmacro %}

{#
    revenue_ranking(relation, item): every row of `relation` (one per currency, period and
    item, with revenue_minor) with the period's total revenue per currency
    (period_total_minor) and the row's rank in it (rank_in_period: largest revenue first, then
    `item` ascending). share_of_total() gives the share; finance's revenue by account and by
    product rank alike.
#}
{% macro revenue_ranking(relation, item) -%}
    select
        {{ relation }}.*,
        sum({{ relation }}.revenue_minor) over (
            partition by {{ relation }}.currency, {{ relation }}.period
        ) as period_total_minor,
        row_number() over (
            partition by {{ relation }}.currency, {{ relation }}.period
            order by {{ relation }}.revenue_minor desc, {{ relation }}.{{ item }} asc
        ) as rank_in_period
    from {{ relation }}
{%- endmacro %}

{# share_of_total(part, total): part's share of a positive total in basis points, else NULL #}
{% macro share_of_total(part, total) -%}
    case
        when {{ total }} > 0 then {{ signed_bps(part, total) }}
    end
{%- endmacro %}
