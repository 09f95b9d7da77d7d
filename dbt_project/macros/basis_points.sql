{#
    signed_bps(num, base): num as a share of base in basis points, num * 10000 / |base|,
    rounded once, half to even, on the magnitude, with num's sign (so -0.5 bp and +0.5 bp round
    alike); NULL when base is NULL or 0. Exact (round_div), BIGINT. Changes pass
    num = now - before, base = before; shares num = part, base = total.
#}
{% macro signed_bps(num, base) -%}
    case
        when ({{ base }}) is null or ({{ base }}) = 0 then null
        when ({{ num }}) < 0 then -{{ round_div('abs(' ~ num ~ ') * 10000', 'abs(' ~ base ~ ')') }}
        else {{ round_div('abs(' ~ num ~ ') * 10000', 'abs(' ~ base ~ ')') }}
    end
{%- endmacro %}
