-- WIP at the end of the production day, by product and step (blocked lots excluded).
-- The product-standard logic lives in dbt/mozart_core; override it here if needed.
{{ config(pre_hook="{{ mozart_core.replace_production_day('snapshot_date') }}") }}

{{ mozart_core.mart_wip() }}
