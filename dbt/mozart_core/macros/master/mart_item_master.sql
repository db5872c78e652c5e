{#- The item master as the APS engine reads it, for the run's plan version. -#}
{% macro mart_item_master() -%}

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.plan_ver() }} as plan_ver,
    cast(item_id as varchar) as item_id,
    cast(item_name as varchar) as item_name,
    cast(item_type as varchar) as item_type,
    cast(item_group_id as varchar) as item_group_id,
    cast(procurement_type as varchar) as procurement_type,
    {{ mozart_core.utc_timestamp('created_at') }} as created_at,
    {{ mozart_core.utc_timestamp('updated_at') }} as updated_at
from {{ ref('stg_item_master') }}

{%- endmacro %}
