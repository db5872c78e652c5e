#!/usr/bin/env bash
# source-seed: writes the demo MES into source-db once, when its database has
# no table yet. mozart_etl.demo.to_postgres replaces every demo table, so
# running it on each `docker compose up` would drop tables under an extract
# that is reading them; a populated source is left as it is. To write it again
# on purpose, pause the demo DAG and run
#   docker compose run --rm source-seed python -m mozart_etl.demo.to_postgres
# libpq's PG* variables name the server and the admin login.
set -euo pipefail
tables="$(psql -v ON_ERROR_STOP=1 -tAc \
  "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
if [[ "${tables}" -gt 0 ]]; then
  echo "demo source in ${PGDATABASE}: ${tables} tables already, left as they are"
  exit 0
fi
exec python -m mozart_etl.demo.to_postgres "$@"
