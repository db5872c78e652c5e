{#- Hours per event type of each active equipment, clipped to the production day. -#}
{% macro mart_equipment_utilization() -%}

with active_equipment as (
    select equipment_id from {{ ref('stg_equipment') }} where active
),

clipped_events as (
    -- An open event (no end yet) runs to the end of the day.
    select
        equipment_id,
        event_type,
        {{ mozart_core.microseconds_between(
            'greatest(started_at, ' ~ mozart_core.window_start() ~ ')',
            'least(coalesce(ended_at, ' ~ mozart_core.window_end() ~ '), '
                ~ mozart_core.window_end() ~ ')'
        ) }} as microseconds
    from {{ ref('stg_equipment_event') }}
    where started_at < {{ mozart_core.window_end() }}
        and coalesce(ended_at, {{ mozart_core.window_end() }}) > {{ mozart_core.window_start() }}
),

per_equipment as (
    select
        e.equipment_id,
        coalesce(sum(case when c.event_type = 'RUN' then c.microseconds end), 0) as run_us,
        coalesce(sum(case when c.event_type = 'IDLE' then c.microseconds end), 0) as idle_us,
        coalesce(sum(case when c.event_type = 'DOWN' then c.microseconds end), 0) as down_us,
        coalesce(sum(case when c.event_type = 'PM' then c.microseconds end), 0) as pm_us
    from active_equipment as e
    left join clipped_events as c on e.equipment_id = c.equipment_id
    group by e.equipment_id
)

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.production_day() }} as work_date,
    cast(equipment_id as varchar) as equipment_id,
    cast({{ mozart_core.hours('run_us') }} as double) as run_hours,
    cast({{ mozart_core.hours('idle_us') }} as double) as idle_hours,
    cast({{ mozart_core.hours('down_us') }} as double) as down_hours,
    cast({{ mozart_core.hours('pm_us') }} as double) as pm_hours,
    cast(
        100.0 * run_us
        / {{ mozart_core.microseconds_between(
            mozart_core.window_start(), mozart_core.window_end()
        ) }}
        as double
    ) as utilization_pct
from per_equipment

{%- endmacro %}
