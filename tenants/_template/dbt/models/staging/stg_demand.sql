-- Demand lines (orders and forecasts), latest state of each.
{{ config(materialized='table') }}
select
    demand_id, item_id, customer_id, demand_type, due_date,
    demand_qty, priority, status, updated_at
from {{ mozart_core.latest(source('raw', 'demand'), ['demand_id']) }} as demand
