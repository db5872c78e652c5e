-- Equipment events (tb_eqp_evt): PROD is the standard RUN, BM (breakdown) DOWN.
-- Times are the MES's New York wall time, made instants by source_instant.
{{ config(materialized='table') }}
select
    evt_no as event_id,
    eqp_id as equipment_id,
    case evt_cd when 'PROD' then 'RUN' when 'BM' then 'DOWN' else evt_cd end
        as event_type,
    {{ mozart_core.source_instant('st_dt') }} as started_at,
    {{ mozart_core.source_instant('ed_dt') }} as ended_at,
    {{ mozart_core.source_instant('upd_dt') }} as updated_at
from {{ mozart_core.as_of(source('raw', 'eqp_evt'), ['evt_no']) }} as eqp_evt
