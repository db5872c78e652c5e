-- Output of parallel equipment against its group's mean; flags past the threshold.
-- The product-standard logic lives in dbt/mozart_core; override it here if needed.
{{ config(pre_hook="{{ mozart_core.replace_production_day('work_date') }}") }}

{{ mozart_core.mart_line_balance() }}
