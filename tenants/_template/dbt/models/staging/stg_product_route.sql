{{ config(materialized='table') }}
select product_id, step_seq, step_id, std_process_minutes
from {{ mozart_core.as_of(source('raw', 'product_route'), ['product_id', 'step_seq']) }} as product_route
