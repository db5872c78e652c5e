#!/usr/bin/env bash
# The publish (APS) target lives on the same server as the demo source, in its
# own database. Idempotent: the one-shot `source-db-init` runs it on every
# `docker compose up`, on a new volume and on an existing one alike.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="${PUBLISH_DB_NAME}" -v owner="${POSTGRES_USER}" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
