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

{#- Hours between two instants, exact to the microsecond (not boundary counts). -#}
{% macro hours_between(start, end) -%}
    {{ return(adapter.dispatch("hours_between", "mozart_core")(start, end)) }}
{%- endmacro %}

{% macro default__hours_between(start, end) -%}
    cast(epoch_us({{ end }}) - epoch_us({{ start }}) as double) / 3600000000.0
{%- endmacro %}

{% macro trino__hours_between(start, end) -%}
    cast(to_milliseconds(({{ end }}) - ({{ start }})) as double) / 3600000.0
{%- endmacro %}
