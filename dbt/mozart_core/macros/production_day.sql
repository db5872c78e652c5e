{#- The run's production day and its UTC bounds, set by the DAG.

    They reach dbt as environment variables (MOZART_RUN_PRODUCTION_DAY, …),
    read only while dbt executes: at parse time these macros render a
    stand-in. dbt re-parses the whole project whenever its `--vars` change,
    which per-run vars did on every run (seconds per dbt task); environment
    variables read at execution are not part of what dbt parses. A `--vars`
    value of the same name still wins (tools and tests pass them so). -#}

{% macro run_var(name) -%}
    {%- set stand_in = {
        "production_day": "1970-01-01",
        "window_start": "1970-01-01T00:00:00+00:00",
        "window_end": "1970-01-02T00:00:00+00:00",
        "plan_ver": "placeholder",
    } -%}
    {%- if var(name, none) is not none -%}
        {{ return(var(name)) }}
    {%- elif execute -%}
        {{ return(env_var("MOZART_RUN_" ~ name | upper)) }}
    {%- else -%}
        {{ return(stand_in[name]) }}
    {%- endif -%}
{%- endmacro %}

{% macro production_day() -%}
    cast('{{ mozart_core.run_var("production_day") }}' as date)
{%- endmacro %}

{% macro window_start() -%}
    {{ mozart_core.instant(mozart_core.run_var("window_start")) }}
{%- endmacro %}

{% macro window_end() -%}
    {{ mozart_core.instant(mozart_core.run_var("window_end")) }}
{%- endmacro %}

{% macro tenant_id() -%}
    cast('{{ var("tenant_id") }}' as varchar)
{%- endmacro %}

{#- A marts model holds one slice per production day; a rerun replaces it. -#}
{% macro replace_production_day(column) -%}
    {% if is_incremental() -%}
        delete from {{ this }} where {{ column }} = {{ mozart_core.production_day() }}
    {%- endif %}
{%- endmacro %}
