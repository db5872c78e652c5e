-- The day's latest plan run against the day's done visits, by product and step.
-- The product-standard logic lives in dbt/mozart_core; override it here if needed.
{{ config(pre_hook="{{ mozart_core.replace_production_day('work_date') }}") }}

{{ mozart_core.mart_plan_vs_actual() }}
