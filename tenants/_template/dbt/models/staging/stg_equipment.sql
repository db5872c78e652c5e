{{ config(materialized='table') }}
select equipment_id, equipment_group, step_id, capacity_per_hour, active
from {{ mozart_core.as_of(source('raw', 'equipment'), ['equipment_id']) }} as equipment
