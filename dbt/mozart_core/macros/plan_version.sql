{#- The run's plan version (`plan_ver`), set by the DAG (production_day.sql
    says how): a pattern checked value, still quoted here as a literal (never
    spliced raw). -#}

{% macro plan_ver() -%}
    cast('{{ mozart_core.run_var("plan_ver") | replace("'", "''") }}' as varchar)
{%- endmacro %}

{#- A master mart holds one partition per plan version; a rerun replaces it
    (delete + insert: portable between DuckDB and Trino). -#}
{% macro replace_plan_ver() -%}
    {% if is_incremental() -%}
        delete from {{ this }} where plan_ver = {{ mozart_core.plan_ver() }}
    {%- endif %}
{%- endmacro %}

{#- An instant as a timestamp without zone holding its UTC wall time. -#}
{% macro utc_timestamp(expression) -%}
    {{ return(adapter.dispatch("utc_timestamp", "mozart_core")(expression)) }}
{%- endmacro %}

{% macro default__utc_timestamp(expression) -%}
    cast(timezone('UTC', {{ expression }}) as timestamp)
{%- endmacro %}

{% macro trino__utc_timestamp(expression) -%}
    cast(({{ expression }}) at time zone 'UTC' as timestamp(6))
{%- endmacro %}
