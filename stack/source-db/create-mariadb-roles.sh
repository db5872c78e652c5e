#!/usr/bin/env bash
# MariaDB sources (acme): one login user per tenant, `mozart_<tenant_id>`, that
# may only read its source database. Idempotent, run by the one-shot
# `acme-source-init` on every `docker compose up`: the database and the user
# are created when missing, and the password is set from .env every time, so
# a changed TENANT_DB_PASSWORD_<TENANT_ID> is applied to an existing volume.
#
# MOZART_TENANT_ROLES: "<tenant_id>:<source database>" pairs. The admin login
# is MARIADB_HOST / MARIADB_PORT / root, its password in MYSQL_PWD (read by the
# client itself, never on a command line).
set -euo pipefail

# A SQL string literal: backslashes and quotes doubled (MariaDB's default mode).
sql_string() {
  local value="${1//\\/\\\\}"
  printf "'%s'" "${value//\'/\'\'}"
}

for pair in ${MOZART_TENANT_ROLES}; do
  tenant="${pair%%:*}"
  database="${pair#*:}"
  user="mozart_${tenant}"
  password_var="TENANT_DB_PASSWORD_${tenant^^}"
  password="${!password_var:?${password_var} is not set}"
  [[ "${database}" =~ ^[A-Za-z0-9_]+$ ]] || { echo "bad database name: ${database}" >&2; exit 1; }

  mariadb --host="${MARIADB_HOST:-127.0.0.1}" --port="${MARIADB_PORT:-3306}" \
    --user=root --batch <<SQL
CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY $(sql_string "${password}");
ALTER USER '${user}'@'%' IDENTIFIED BY $(sql_string "${password}");
GRANT SELECT, SHOW VIEW ON \`${database}\`.* TO '${user}'@'%';
SQL
  echo "user ${user}: ready on ${database} (password from ${password_var})"
done
