{#- The run's production day and its UTC bounds, set by the DAG as dbt vars. -#}

{% macro production_day() -%}
    cast('{{ var("production_day") }}' as date)
{%- endmacro %}

{% macro window_start() -%}
    {{ mozart_core.instant(var("window_start")) }}
{%- endmacro %}

{% macro window_end() -%}
    {{ mozart_core.instant(var("window_end")) }}
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
