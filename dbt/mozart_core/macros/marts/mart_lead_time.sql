{#- Lead time of the lots that finished their last route step on the production day. -#}
{% macro mart_lead_time() -%}

with visits as (
    select * from {{ ref('stg_lot_history') }}
),

last_route_step as (
    select product_id, max(step_seq) as step_seq
    from {{ ref('stg_product_route') }}
    group by product_id
),

lot_start as (
    select lot_id, min(arrived_at) as first_arrived_at
    from visits
    group by lot_id
),

finished_lots as (
    select v.lot_id, v.product_id, v.track_out_at, s.first_arrived_at
    from visits as v
    inner join last_route_step as l
        on v.product_id = l.product_id and v.step_seq = l.step_seq
    inner join lot_start as s on v.lot_id = s.lot_id
    where v.status = 'DONE'
        and v.track_out_at >= {{ mozart_core.window_start() }}
        and v.track_out_at < {{ mozart_core.window_end() }}
)

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.production_day() }} as work_date,
    cast(product_id as varchar) as product_id,
    cast(count(distinct lot_id) as bigint) as lot_count,
    cast({{ mozart_core.avg_hours('first_arrived_at', 'track_out_at') }} as double)
        as avg_lead_time_hours
from finished_lots
group by product_id

{%- endmacro %}
