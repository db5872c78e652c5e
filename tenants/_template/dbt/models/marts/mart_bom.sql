-- BOM lines valid on the run's production day, for its plan version.
-- The product-standard logic lives in dbt/mozart_core; override it here if needed.
{{ config(pre_hook="{{ mozart_core.replace_plan_ver() }}") }}

{{ mozart_core.mart_bom() }}
