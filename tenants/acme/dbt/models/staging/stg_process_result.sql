-- Inspection results (tb_insp_rslt); remarks may be Korean. meas_dt is New
-- York wall time, made an instant by source_instant.
{{ config(materialized='table') }}
select
    rslt_no as result_id,
    lot_no as lot_id,
    oper_id as step_id,
    eqp_id as equipment_id,
    {{ mozart_core.source_instant('meas_dt') }} as measured_at,
    cast(good_qty as bigint) as good_qty,
    cast(bad_qty as bigint) as defect_qty,
    bad_cd as defect_code,
    rmk as remark
from {{ mozart_core.as_of(source('raw', 'insp_rslt'), ['rslt_no']) }} as insp_rslt
