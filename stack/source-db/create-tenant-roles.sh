#!/usr/bin/env bash
# One login role per tenant, `mozart_<tenant_id>`, that reads the tenant's
# source database and writes only its own schema of the publish (APS)
# database. PUBLIC loses its default rights on both, so a tenant's role cannot
# read or create anything of another tenant's.
#
# Idempotent, and run by the one-shot `source-db-init` on every `docker compose
# up` (not only when the volume is new, as /docker-entrypoint-initdb.d would):
# a tenant added to MOZART_TENANT_ROLES gets its role on an existing volume,
# and a changed TENANT_DB_PASSWORD_<TENANT_ID> in .env is applied (rotation).
#
# MOZART_TENANT_ROLES: "<tenant_id>:<source database>" pairs; each role's
# password comes from TENANT_DB_PASSWORD_<TENANT_ID> (in .env).
set -euo pipefail

psql_as_admin() {
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" "$@"
}

psql_as_admin --dbname "${PUBLISH_DB_NAME}" -v db="${PUBLISH_DB_NAME}" <<'SQL'
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL

for pair in ${MOZART_TENANT_ROLES}; do
  tenant="${pair%%:*}"
  source_db="${pair#*:}"
  role="mozart_${tenant}"
  password_var="TENANT_DB_PASSWORD_${tenant^^}"
  password="${!password_var:?${password_var} is not set}"

  psql_as_admin --dbname "${source_db}" \
    -v role="${role}" -v password="${password}" -v db="${source_db}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- Every run: the password in .env is the one that works (rotation).
ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"role";
GRANT USAGE ON SCHEMA public TO :"role";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"role";
-- Tables the seed job creates later: readable, never writable.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO :"role";
SQL

  psql_as_admin --dbname "${PUBLISH_DB_NAME}" \
    -v role="${role}" -v db="${PUBLISH_DB_NAME}" -v schema="${tenant}" <<'SQL'
GRANT CONNECT ON DATABASE :"db" TO :"role";
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"role";
SQL
  echo "role ${role}: ready (password from ${password_var})"
done
