{#- BOM lines valid on the base date (the run's production day), per plan version. -#}
{% macro mart_bom() -%}

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.plan_ver() }} as plan_ver,
    cast(parent_item_id as varchar) as parent_item_id,
    cast(child_item_id as varchar) as child_item_id,
    cast(qty_per as decimal(12, 4)) as qty_per
from {{ ref('stg_bom') }}
where valid_from <= {{ mozart_core.production_day() }}
    and (valid_to is null or valid_to >= {{ mozart_core.production_day() }})

{%- endmacro %}
