{#- The day's latest plan run against the day's done visits, by product and step. -#}
{% macro mart_plan_vs_actual() -%}

with plan_lines as (
    -- Runs that existed at the day's end: one created later did not exist then.
    select * from {{ ref('stg_plan_production') }}
    where plan_date = {{ mozart_core.production_day() }}
        and created_at <= {{ mozart_core.window_end() }}
),

latest_run as (
    select plan_run_id
    from plan_lines
    group by plan_run_id
    order by max(created_at) desc, plan_run_id desc
    limit 1
),

planned as (
    select p.product_id, p.step_id, sum(p.planned_qty) as planned_qty
    from plan_lines as p
    inner join latest_run as r on p.plan_run_id = r.plan_run_id
    group by p.product_id, p.step_id
),

actual as (
    select product_id, step_id, sum(qty_out) as actual_qty
    from {{ ref('stg_lot_history') }}
    where status = 'DONE'
        and track_out_at >= {{ mozart_core.window_start() }}
        and track_out_at < {{ mozart_core.window_end() }}
    group by product_id, step_id
),

joined as (
    select
        coalesce(p.product_id, a.product_id) as product_id,
        coalesce(p.step_id, a.step_id) as step_id,
        cast(coalesce(p.planned_qty, 0) as bigint) as planned_qty,
        cast(coalesce(a.actual_qty, 0) as bigint) as actual_qty
    from planned as p
    full outer join actual as a
        on p.product_id = a.product_id and p.step_id = a.step_id
)

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.production_day() }} as work_date,
    cast(j.product_id as varchar) as product_id,
    cast(j.step_id as varchar) as step_id,
    cast((select plan_run_id from latest_run) as varchar) as plan_run_id,
    j.planned_qty,
    j.actual_qty,
    cast(j.actual_qty - j.planned_qty as bigint) as deviation_qty,
    cast(
        case when j.planned_qty = 0 then null
        else 100.0 * j.actual_qty / j.planned_qty end
        as double
    ) as attainment_pct
from joined as j

{%- endmacro %}
