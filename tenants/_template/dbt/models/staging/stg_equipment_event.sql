{{ config(materialized='table') }}
select event_id, equipment_id, event_type, started_at, ended_at, updated_at
from {{ mozart_core.as_of(source('raw', 'equipment_event'), ['event_id']) }} as equipment_event
