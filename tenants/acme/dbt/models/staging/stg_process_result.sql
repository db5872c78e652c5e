-- Inspection results (tb_insp_rslt); remarks may be Korean.
{{ config(materialized='table') }}
select
    rslt_no as result_id,
    lot_no as lot_id,
    oper_id as step_id,
    eqp_id as equipment_id,
    meas_dt as measured_at,
    cast(good_qty as bigint) as good_qty,
    cast(bad_qty as bigint) as defect_qty,
    bad_cd as defect_code,
    rmk as remark
from {{ source('raw', 'insp_rslt') }}
