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

{#- A naive source timestamp (the plant's wall clock) as an instant.

    `column` holds wall time in `zone` (default: the tenant's declared source
    zone, the dbt var `source_timezone`; UTC when undeclared); the result is a
    timestamp with time zone (UTC on Trino), as raw's `timestamptz` columns are.
    Only for naive columns: a timestamptz column is an instant already.

    Where clocks fall back, a wall time in the repeated hour names two instants;
    both engines read it as the first (the offset before the change), as Python
    does with fold=0 (the extractor, the tests' oracles). Alone, DuckDB (ICU)
    reads the later one and Trino's `with_timezone` either, by the zone's
    hemisphere; so the wall time an hour earlier is read too, plus an hour: it
    is the first occurrence when its own wall time matches (`least` keeps the
    earlier instant). Fall-backs of up to an hour, as every IANA zone has today.
    A wall time in the spring-forward gap, which no clock shows, reads with the
    offset before the change. -#}
{% macro source_instant(column, zone=none) -%}
    {%- set zone = zone or var("source_timezone", "UTC") -%}
    {{ return(adapter.dispatch("source_instant", "mozart_core")(column, zone)) }}
{%- endmacro %}

{% macro default__source_instant(column, zone) -%}
    {%- set zone = "'" ~ (zone | replace("'", "''")) ~ "'" -%}
    {%- if zone == "'UTC'" -%}
        timezone('UTC', {{ column }})
    {%- else -%}
        {%- set earlier = "(timezone(" ~ zone ~ ", (" ~ column ~ ") - interval '1 hour') + interval '1 hour')" -%}
        least(
            timezone({{ zone }}, {{ column }}),
            case when timezone({{ zone }}, {{ earlier }}) = ({{ column }}) then {{ earlier }} end
        )
    {%- endif -%}
{%- endmacro %}

{% macro trino__source_instant(column, zone) -%}
    {%- set zone = "'" ~ (zone | replace("'", "''")) ~ "'" -%}
    {%- if zone == "'UTC'" -%}
        with_timezone({{ column }}, 'UTC')
    {%- else -%}
        {%- set direct = "(with_timezone(" ~ column ~ ", " ~ zone ~ ") at time zone 'UTC')" -%}
        {%- set earlier = "((with_timezone((" ~ column ~ ") - interval '1' hour, " ~ zone ~ ") at time zone 'UTC') + interval '1' hour)" -%}
        least(
            {{ direct }},
            coalesce(
                case when cast({{ earlier }} at time zone {{ zone }} as timestamp(6)) = ({{ column }})
                    then {{ earlier }} end,
                {{ direct }}
            )
        )
    {%- endif -%}
{%- endmacro %}
