{#
    Models land in the schema their folder names (staging, intermediate, marts, seeds), as is,
    not prefixed with the target schema. Without a custom schema the target schema is used.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
