{#- Engine differences live here, dispatched on the adapter; models stay portable. -#}

{% macro instant(iso_text) -%}
    {{ return(adapter.dispatch("instant", "mozart_core")(iso_text)) }}
{%- endmacro %}

{% macro default__instant(iso_text) -%}
    cast('{{ iso_text }}' as timestamp with time zone)
{%- endmacro %}

{% macro trino__instant(iso_text) -%}
    from_iso8601_timestamp('{{ iso_text }}')
{%- endmacro %}

{#- Whole microseconds between two instants: an integer, so sums are exact and
    independent of the order the engine adds rows in (reruns give equal marts). -#}
{% macro microseconds_between(start, end) -%}
    {{ return(adapter.dispatch("microseconds_between", "mozart_core")(start, end)) }}
{%- endmacro %}

{% macro default__microseconds_between(start, end) -%}
    (epoch_us({{ end }}) - epoch_us({{ start }}))
{%- endmacro %}

{% macro trino__microseconds_between(start, end) -%}
    (to_milliseconds(({{ end }}) - ({{ start }})) * 1000)
{%- endmacro %}

{% macro hours(microseconds) -%}
    cast({{ microseconds }} as double) / 3600000000.0
{%- endmacro %}

{#- Hours between two instants. -#}
{% macro hours_between(start, end) -%}
    {{ mozart_core.hours(mozart_core.microseconds_between(start, end)) }}
{%- endmacro %}

{#- Mean hours over rows: exact integer sum, one division (deterministic). -#}
{% macro avg_hours(start, end) -%}
    {{ mozart_core.hours("sum(" ~ mozart_core.microseconds_between(start, end) ~ ")") }}
        / count({{ mozart_core.microseconds_between(start, end) }})
{%- endmacro %}

{#- Mean of an integer column within a window partition, deterministic too. -#}
{% macro exact_mean_over(column, partition_by) -%}
    cast(sum({{ column }}) over (partition by {{ partition_by }}) as double)
        / count({{ column }}) over (partition by {{ partition_by }})
{%- endmacro %}
