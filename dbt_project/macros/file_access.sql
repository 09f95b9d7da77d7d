{#
    On DuckDB, limit the files the build can reach to var('duckdb_allowed_directories') (its own
    database aside): no read_csv / read_parquet / COPY / ATTACH elsewhere, no extension
    downloads. The same limit as meterline's own connections (meterline/warehouse.py
    limit_duckdb_files), and like it applied once per database instance: DuckDB refuses to lift
    or change it while the database is open. Without the var (a plain `dbt build`), nothing is
    limited. Runs as an on-run-start hook; returns a no-op statement.
#}
{% macro limit_file_access() %}
    {%- set dirs = var('duckdb_allowed_directories', none) -%}
    {%- if execute and target.type == 'duckdb' and dirs is not none -%}
        {%- set enabled = run_query("select current_setting('enable_external_access')").columns[0].values()[0] -%}
        {%- if enabled -%}
            {%- set quoted = [] -%}
            {%- for d in dirs -%}
                {%- do quoted.append("'" ~ (d.rstrip('/') ~ '/') | replace("'", "''") ~ "'") -%}
            {%- endfor -%}
            {%- do run_query('set allowed_directories = [' ~ quoted | join(', ') ~ ']') -%}
            {%- do run_query('set enable_external_access = false') -%}
        {%- endif -%}
    {%- endif -%}
    select 1 as file_access_limited
{%- endmacro %}


{#
    For tests (tests/reliability/test_duckdb_access.py): apply the limit, then read `path` as
    CSV on dbt's own connection; outside the allowed directories DuckDB must refuse. Usage:
    dbt run-operation probe_file_access --args '{path: /some/file.csv}'
#}
{% macro probe_file_access(path) %}
    {%- do run_query(limit_file_access()) -%}
    {%- set rows = run_query("select count(*) from read_csv('" ~ path | replace("'", "''") ~ "')") -%}
    {{ log("probe_file_access: read " ~ rows.columns[0].values()[0] ~ " row(s) of " ~ path, info=true) }}
{% endmacro %}


{#
    [warehouse] duckdb_memory_limit / duckdb_temp_directory (meterline passes them as the var
    duckdb_settings). Both are the database instance's: set before limit_file_access(), which
    freezes temp_directory. When the instance is already limited (meterline opened the same
    file in this process and set them), temp_directory is left as it is; memory_limit is set
    again either way.
#}
{% macro apply_duckdb_settings() %}
    {%- set settings = var('duckdb_settings', none) -%}
    {%- if execute and target.type == 'duckdb' and settings -%}
        {%- set open = run_query("select current_setting('enable_external_access')").columns[0].values()[0] -%}
        {%- for name in settings | sort -%}
            {%- if name not in ('memory_limit', 'temp_directory') -%}
                {{ exceptions.raise_compiler_error("duckdb_settings: unknown setting " ~ name) }}
            {%- endif -%}
            {%- if open or name != 'temp_directory' -%}
                {%- do run_query('set ' ~ name ~ " = '" ~ settings[name] | replace("'", "''") ~ "'") -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1 as duckdb_settings_applied
{%- endmacro %}
