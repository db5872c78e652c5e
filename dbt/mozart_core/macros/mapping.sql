{#- Helpers of the staging models `mozart sync` generates from a tenant.yaml
    mapping (include/mozart_etl/dbt/mapping.py). -#}

{#- A deterministic key made from a row's columns, for a source without an id
    of its own (an event table keyed by machine and start): the md5 hex of the
    values, each as text prefixed by its length so that no two different rows
    give the same text ('a|b','c' and 'a','b|c' differ), a null as '-'.
    `columns` are quoted SQL identifiers. The same row gives the same key on
    every run; DuckDB and Trino may spell a timestamp's text differently, so
    a key is stable within one engine. -#}
{% macro generated_key(columns) -%}
    {{ return(adapter.dispatch("generated_key", "mozart_core")(columns)) }}
{%- endmacro %}

{% macro key_text(columns) -%}
    {%- for column in columns -%}
        coalesce(cast(length(cast({{ column }} as varchar)) as varchar) || ':' || cast({{ column }} as varchar), '-')
        {{- " || ',' || " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{% macro default__generated_key(columns) -%}
    md5({{ mozart_core.key_text(columns) }})
{%- endmacro %}

{% macro trino__generated_key(columns) -%}
    lower(to_hex(md5(to_utf8({{ mozart_core.key_text(columns) }}))))
{%- endmacro %}
