#!/usr/bin/env bash
# airflow-init: migrate the metadata database, create the admin user, the
# tenants' roles and the pools, and check that every connection the DAGs use
# resolves. Idempotent: `docker compose up` runs it on every start.
set -euo pipefail

airflow db migrate

# FAB's `users create` leaves an existing user as it is (and says so).
airflow users create \
  --username "${AIRFLOW_ADMIN_USER}" \
  --password "${AIRFLOW_ADMIN_PASSWORD}" \
  --firstname Mozart --lastname Admin \
  --email "${AIRFLOW_ADMIN_USER}@example.invalid" \
  --role Admin

# The roles tenant.yaml `access` names, each with exactly its global
# permissions, before the dag-processor writes the DAGs' access_control into
# them (a missing role makes the DAG file an import error). Idempotent.
python /opt/mozart/stack/airflow/tenant_roles.py

airflow pools import /opt/mozart/stack/airflow/pools.json

# Connections are AIRFLOW_CONN_* environment variables of every Airflow
# service (docker-compose.yaml); fail here, not in a task, if one is broken.
for conn_id in ${MOZART_CONN_IDS}; do
  airflow connections get "${conn_id}" --output json > /dev/null
  echo "connection ${conn_id}: OK"
done

# Every tenant.yaml, read with this stack's environment.
mozart validate
