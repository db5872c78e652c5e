#!/usr/bin/env bash
# Runs once, when the source-db volume is first initialised (after
# 10-create-publish-db.sh): one login role per tenant, `mozart_<tenant_id>`,
# that reads the tenant's source database and writes only its own schema of
# the publish (APS) database. PUBLIC loses its default rights on both, so a
# tenant's role cannot read or create anything of another tenant's.
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
CREATE ROLE :"role" LOGIN PASSWORD :'password';
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
CREATE SCHEMA :"schema" AUTHORIZATION :"role";
SQL
done
