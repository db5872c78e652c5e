{#- Raw keeps every captured version of a row (`_mozart_valid_from`, and
    `_mozart_deleted` for the version that closes a row deleted in the source).
    Staging reads one row per key through these macros. -#}

{#- Each key's version valid at instant `at` (default: the end of the run's
    production day): the latest version valid from at or before `at`, dropped
    when that version is a deletion. A key whose every captured version begins
    after `at` (first captured late) is read from its earliest version: its
    facts (event timestamps) still place it in time; its state did not hold at
    `at`, which marts tell by `_mozart_valid_from > at`. -#}
{% macro as_of(relation, keys, at=none) -%}
{%- set at = at if at is not none else mozart_core.window_end() -%}
(
    select *
    from (
        select
            v.*,
            row_number() over (
                partition by {% for key in keys %}v.{{ adapter.quote(key) }}{{ ", " if not loop.last }}{% endfor %}
                order by
                    case when v._mozart_valid_from <= {{ at }} then 0 else 1 end,
                    case when v._mozart_valid_from <= {{ at }} then v._mozart_valid_from end desc,
                    v._mozart_valid_from,
                    v._mozart_loaded_at desc
            ) as _mozart_version_rank
        from {{ relation }} as v
    ) as ranked
    where _mozart_version_rank = 1 and not _mozart_deleted
)
{%- endmacro %}

{#- Each key's latest version, as the run read the source (master data of a plan
    version is prepared from the source as it stands). -#}
{% macro latest(relation, keys) -%}
    {{ mozart_core.as_of(relation, keys, mozart_core.instant("9999-12-31T00:00:00+00:00")) }}
{%- endmacro %}

{#- Whether a row's state (a status, a flag) held at the end of the production
    day: its version began at or before it. -#}
{% macro state_held(valid_from_column='_mozart_valid_from') -%}
    ({{ valid_from_column }} <= {{ mozart_core.window_end() }})
{%- endmacro %}
