-- Equipment events (tb_eqp_evt): PROD is the standard RUN, BM (breakdown) DOWN.
{{ config(materialized='table') }}
select
    evt_no as event_id,
    eqp_id as equipment_id,
    case evt_cd when 'PROD' then 'RUN' when 'BM' then 'DOWN' else evt_cd end
        as event_type,
    st_dt as started_at,
    ed_dt as ended_at,
    upd_dt as updated_at
from {{ source('raw', 'eqp_evt') }}
