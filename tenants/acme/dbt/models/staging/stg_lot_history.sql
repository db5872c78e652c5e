-- One row per lot visit of a process step (validated rows only), in standard
-- names and status codes: acme's END is DONE, SCRP is SCRAP.
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
    arr_dt as arrived_at,
    tkin_dt as track_in_at,
    tkout_dt as track_out_at,
    upd_dt as updated_at
from {{ source('raw', 'lot_hist') }}
