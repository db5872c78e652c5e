{#- Output of parallel equipment against its group's mean; flags past the threshold. -#}
{% macro mart_line_balance() -%}

with active_equipment as (
    select equipment_id, equipment_group
    from {{ ref('stg_equipment') }}
    where active
),

output_of_day as (
    select equipment_id, sum(qty_out) as output_qty
    from {{ ref('stg_lot_history') }}
    where status = 'DONE'
        and track_out_at >= {{ mozart_core.window_start() }}
        and track_out_at < {{ mozart_core.window_end() }}
    group by equipment_id
),

per_equipment as (
    select
        e.equipment_group,
        e.equipment_id,
        cast(coalesce(o.output_qty, 0) as bigint) as output_qty
    from active_equipment as e
    left join output_of_day as o on e.equipment_id = o.equipment_id
),

with_group_mean as (
    select
        *,
        {{ mozart_core.exact_mean_over('output_qty', 'equipment_group') }}
            as group_mean_qty
    from per_equipment
),

with_deviation as (
    select
        *,
        case when group_mean_qty = 0 then null
        else 100.0 * (output_qty - group_mean_qty) / group_mean_qty end as deviation_pct
    from with_group_mean
)

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.production_day() }} as work_date,
    cast(equipment_group as varchar) as equipment_group,
    cast(equipment_id as varchar) as equipment_id,
    output_qty,
    cast(group_mean_qty as double) as group_mean_qty,
    cast(deviation_pct as double) as deviation_pct,
    coalesce(abs(deviation_pct) > {{ var('line_balance_threshold_pct', 20) }}, false)
        as imbalance_flag
from with_deviation

{%- endmacro %}
