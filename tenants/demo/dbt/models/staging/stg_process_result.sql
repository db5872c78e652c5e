{{ config(materialized='table') }}
select
    result_id, lot_id, step_id, equipment_id, measured_at,
    good_qty, defect_qty, defect_code, remark
from {{ source('raw', 'process_result') }}
