-- BOM lines with their validity (valid_to null: open-ended).
{{ config(materialized='table') }}
select parent_item_id, child_item_id, valid_from, valid_to, qty_per
from {{ mozart_core.latest(source('raw', 'bom'), ['parent_item_id', 'child_item_id', 'valid_from']) }} as bom
