#!/usr/bin/env bash
# Runs once, when the source-db volume is first initialised: the publish
# target lives on the same server as the demo source, in its own database.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${PUBLISH_DB_NAME}\" OWNER \"${POSTGRES_USER}\""
