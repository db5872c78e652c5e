{{ config(materialized='table') }}
select product_id, step_seq, step_id, std_process_minutes
from {{ source('raw', 'product_route') }}
