"""One maintenance Airflow DAG per tenant folder, `<tenant>.maintenance`
(mozart_etl.factory.maintenance_dag): raw compaction, snapshot expiry, run
ledger compaction, orphan sweep.

(The words "airflow" and "dag" in this file let Airflow's safe-mode parser pick it up.)
"""

from mozart_etl.factory.maintenance_dag import build_maintenance_dags

globals().update(build_maintenance_dags())
