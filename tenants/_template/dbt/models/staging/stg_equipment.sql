{{ config(materialized='table') }}
select equipment_id, equipment_group, step_id, capacity_per_hour, active
from {{ source('raw', 'equipment') }}
