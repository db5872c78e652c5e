-- Queue, process and cycle hours of the visits done on the production day.
-- The product-standard logic lives in dbt/mozart_core; override it here if needed.
{{ config(pre_hook="{{ mozart_core.replace_production_day('work_date') }}") }}

{{ mozart_core.mart_cycle_time() }}
