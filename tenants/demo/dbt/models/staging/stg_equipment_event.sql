{{ config(materialized='table') }}
select event_id, equipment_id, event_type, started_at, ended_at, updated_at
from {{ source('raw', 'equipment_event') }}
