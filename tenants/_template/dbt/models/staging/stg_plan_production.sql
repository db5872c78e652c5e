-- Lines of every plan run; a run is immutable once written by the APS engine.
{{ config(materialized='table') }}
select
    plan_run_id, line_no, plan_date, product_id, step_id, equipment_id,
    planned_qty, planned_start, planned_end, created_at
from {{ source('raw', 'plan_production') }}
