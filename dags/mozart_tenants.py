"""One daily Airflow DAG per tenant folder under `tenants/` (mozart_etl.factory).

(The words "airflow" and "dag" in this file let Airflow's safe-mode parser pick it up.)
"""

from mozart_etl.factory.dag_factory import build_tenant_dags

globals().update(build_tenant_dags())
