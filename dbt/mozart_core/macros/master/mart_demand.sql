{#- Open demand due on or after the base date, by item and due date, per plan version. -#}
{% macro mart_demand() -%}

with open_demand as (
    select item_id, due_date, demand_type, demand_qty, priority
    from {{ ref('stg_demand') }}
    where status = 'OPEN' and due_date >= {{ mozart_core.production_day() }}
)

select
    {{ mozart_core.tenant_id() }} as tenant_id,
    {{ mozart_core.plan_ver() }} as plan_ver,
    cast(item_id as varchar) as item_id,
    cast(due_date as date) as due_date,
    cast(
        coalesce(sum(case when demand_type = 'ORDER' then demand_qty end), 0)
        as decimal(14, 2)
    ) as order_qty,
    cast(
        coalesce(sum(case when demand_type = 'FORECAST' then demand_qty end), 0)
        as decimal(14, 2)
    ) as forecast_qty,
    cast(max(priority) as integer) as max_priority,
    cast(count(*) as bigint) as demand_count
from open_demand
group by item_id, due_date

{%- endmacro %}
