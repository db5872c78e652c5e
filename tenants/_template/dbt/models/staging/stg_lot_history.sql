-- One row per lot visit of a process step (validated rows only), in the version
-- valid at the end of the run's production day (`_mozart_valid_from`: when it
-- became valid; the marts tell states that did not hold yet by it).
{{ config(materialized='table') }}
select
    lot_id, step_seq, product_id, step_id, equipment_id,
    qty_in, qty_out, status,
    arrived_at, track_in_at, track_out_at, updated_at, _mozart_valid_from
from {{ mozart_core.as_of(source('raw', 'lot_history'), ['lot_id', 'step_seq']) }} as lot_history
