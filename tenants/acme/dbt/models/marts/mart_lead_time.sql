-- Lead time of the lots that finished their last route step on the production day.
-- The product-standard logic lives in dbt/mozart_core; override it here if needed.
{{ config(pre_hook="{{ mozart_core.replace_production_day('work_date') }}") }}

{{ mozart_core.mart_lead_time() }}
