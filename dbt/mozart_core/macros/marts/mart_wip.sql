{#- WIP at the end of the production day, by product and step (blocked lots excluded). -#}
{% macro mart_wip() -%}

with visits as (
    select * from {{ ref('stg_lot_history') }}
),

-- Blocked at the day's end: a visit's version valid then is HOLD or SCRAP (a
-- visit first captured after the day's end had no known state then).
blocked_lots as (
    select distinct lot_id from visits
    where status in ('HOLD', 'SCRAP') and {{ mozart_core.state_held() }}
),

in_process_at_day_end as (
    select v.*
    from visits as v
    where v.arrived_at < {{ mozart_core.window_end() }}
        and (v.track_out_at is null or v.track_out_at >= {{ mozart_core.window_end() }})
        and not exists (select 1 from blocked_lots as b where b.lot_id = v.lot_id)
)

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.production_day() }} as snapshot_date,
    cast(product_id as varchar) as product_id,
    cast(step_id as varchar) as step_id,
    cast(count(distinct lot_id) as bigint) as lot_count,
    cast(sum(qty_in) as bigint) as wip_qty
from in_process_at_day_end
group by product_id, step_id

{%- endmacro %}
