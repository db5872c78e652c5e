-- Hours per event type of each active equipment, clipped to the production day.
-- The product-standard logic lives in dbt/mozart_core; override it here if needed.
{{ config(pre_hook="{{ mozart_core.replace_production_day('work_date') }}") }}

{{ mozart_core.mart_equipment_utilization() }}
