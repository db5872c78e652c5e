-- One row per lot visit of a process step (validated rows only), in standard
-- names and status codes: acme's END is DONE, SCRP is SCRAP. The version valid
-- at the end of the run's production day (`_mozart_valid_from`: when it became
-- valid; the marts tell states that did not hold yet by it). Acme's MES writes
-- New York wall time (DATETIME): source_instant makes instants of it.
{{ config(materialized='table') }}
select
    lot_no as lot_id,
    oper_seq as step_seq,
    prod_id as product_id,
    oper_id as step_id,
    eqp_id as equipment_id,
    cast(in_qty as bigint) as qty_in,
    cast(out_qty as bigint) as qty_out,
    case lot_stat when 'END' then 'DONE' when 'SCRP' then 'SCRAP' else lot_stat end
        as status,
    {{ mozart_core.source_instant('arr_dt') }} as arrived_at,
    {{ mozart_core.source_instant('tkin_dt') }} as track_in_at,
    {{ mozart_core.source_instant('tkout_dt') }} as track_out_at,
    {{ mozart_core.source_instant('upd_dt') }} as updated_at,
    _mozart_valid_from
from {{ mozart_core.as_of(source('raw', 'lot_hist'), ['lot_no', 'oper_seq']) }} as lot_hist
