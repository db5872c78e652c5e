-- The item master for the run's plan version (APS input).
-- The product-standard logic lives in dbt/mozart_core; override it here if needed.
{{ config(pre_hook="{{ mozart_core.replace_plan_ver() }}") }}

{{ mozart_core.mart_item_master() }}
