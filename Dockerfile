# Mozart ETL on the official Airflow image: Airflow 3.3.2, Python 3.11
# (the versions pinned in requirements.txt; tests/stack/test_compose.py checks).
FROM apache/airflow:3.3.2-python3.11

ENV MOZART_PROJECT_ROOT=/opt/mozart \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/mozart/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/mozart/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    PIP_NO_CACHE_DIR=1

USER root
# psql: the PostgreSQL extract streams COPY through it (pg_copy.py: a process of
# its own drains the server, ~0.3 s less per 1M rows than draining in Python).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /opt/mozart && chown airflow:0 /opt/mozart
USER airflow
WORKDIR /opt/mozart

# 1. Dependencies first (the slow layer, cached while only the code changes),
#    byte-compiled so no Airflow process pays for compiling at start.
#    requirements.txt is the runtime only (test tools are in
#    requirements-dev.txt, never here; tests/stack/test_packaging.py checks).
#    stack/requirements-stack.txt adds the FAB auth manager (the UI login),
#    resolved against requirements.txt so it cannot move a pinned version.
#    Both files are complete locks, so --no-deps: pip installs exactly them
#    (mysqlclient, which requirements-overrides.txt leaves out of the lock, is
#    the base image's own build).
COPY --chown=airflow:0 requirements.txt /opt/mozart/requirements.txt
COPY --chown=airflow:0 stack/requirements-stack.txt /opt/mozart/stack/requirements-stack.txt
RUN pip install --compile --no-deps -r /opt/mozart/requirements.txt \
        -r /opt/mozart/stack/requirements-stack.txt

# 2. The package itself, editable so the DAG folder and the code stay together.
COPY --chown=airflow:0 pyproject.toml /opt/mozart/pyproject.toml
COPY --chown=airflow:0 include /opt/mozart/include
RUN pip install --compile --no-deps -e /opt/mozart

# 3. DAGs, tenants, the shared dbt project and the stack's scripts.
COPY --chown=airflow:0 dags /opt/mozart/dags
COPY --chown=airflow:0 plugins /opt/mozart/plugins
COPY --chown=airflow:0 dbt /opt/mozart/dbt
COPY --chown=airflow:0 tenants /opt/mozart/tenants
COPY --chown=airflow:0 stack /opt/mozart/stack
RUN python -m compileall -q /opt/mozart/include /opt/mozart/dags

# 4. dbt manifests at build time: the DAGs render from them (no `dbt ls` while
#    parsing). A stale generated sources file fails the build.
RUN mozart sync --check && mozart manifests
