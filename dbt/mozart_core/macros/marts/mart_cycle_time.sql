{#- Queue, process and cycle hours of the visits done on the production day. -#}
{% macro mart_cycle_time() -%}

with done_visits as (
    select *
    from {{ ref('stg_lot_history') }}
    where status = 'DONE'
        and track_out_at >= {{ mozart_core.window_start() }}
        and track_out_at < {{ mozart_core.window_end() }}
)

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.production_day() }} as work_date,
    cast(product_id as varchar) as product_id,
    cast(step_id as varchar) as step_id,
    cast(count(distinct lot_id) as bigint) as lot_count,
    cast({{ mozart_core.avg_hours('arrived_at', 'track_in_at') }} as double)
        as avg_queue_hours,
    cast({{ mozart_core.avg_hours('track_in_at', 'track_out_at') }} as double)
        as avg_process_hours,
    cast({{ mozart_core.avg_hours('arrived_at', 'track_out_at') }} as double)
        as avg_cycle_hours,
    cast(
        {{ mozart_core.hours(
            'max(' ~ mozart_core.microseconds_between('arrived_at', 'track_out_at') ~ ')'
        ) }} as double
    ) as max_cycle_hours
from done_visits
group by product_id, step_id

{%- endmacro %}
