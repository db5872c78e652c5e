{{ config(materialized='table') }}
select
    result_id, lot_id, step_id, equipment_id, measured_at,
    good_qty, defect_qty, defect_code, remark
from {{ mozart_core.as_of(source('raw', 'process_result'), ['result_id']) }} as process_result
