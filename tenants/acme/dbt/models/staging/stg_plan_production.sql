-- Lines of every plan run (tb_plan); a run is immutable once written (snapshot
-- mode), so raw is read as it is. Times are New York wall time, made instants.
{{ config(materialized='table') }}
select
    plan_id as plan_run_id,
    line_seq as line_no,
    plan_dt as plan_date,
    prod_id as product_id,
    oper_id as step_id,
    eqp_id as equipment_id,
    cast(plan_qty as bigint) as planned_qty,
    {{ mozart_core.source_instant('plan_st_dt') }} as planned_start,
    {{ mozart_core.source_instant('plan_ed_dt') }} as planned_end,
    {{ mozart_core.source_instant('crt_dt') }} as created_at
from {{ source('raw', 'plan') }}
