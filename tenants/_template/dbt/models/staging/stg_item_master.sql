-- One row per item (APS master data; validated rows only).
{{ config(materialized='table') }}
select
    item_id, item_name, item_type, item_group_id, procurement_type,
    created_at, updated_at
from {{ mozart_core.latest(source('raw', 'item_master'), ['item_id']) }} as item_master
