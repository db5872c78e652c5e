-- Acme's equipment master (tb_eqp): use_yn 'Y'/'N' is the standard `active`.
{{ config(materialized='table') }}
select
    eqp_id as equipment_id,
    eqp_grp as equipment_group,
    oper_id as step_id,
    capa_hr as capacity_per_hour,
    use_yn = 'Y' as active
from {{ mozart_core.as_of(source('raw', 'eqp'), ['eqp_id']) }} as eqp
