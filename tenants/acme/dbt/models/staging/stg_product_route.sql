-- Acme's routes (tb_route): oper_seq/oper_id are the standard step_seq/step_id.
{{ config(materialized='table') }}
select
    prod_id as product_id,
    oper_seq as step_seq,
    oper_id as step_id,
    std_min as std_process_minutes
from {{ mozart_core.as_of(source('raw', 'route'), ['prod_id', 'oper_seq']) }} as route
