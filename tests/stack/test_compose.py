"""Static checks of the stack (there is no Docker engine to start it here).

docker-compose.yaml, .env.example, the Dockerfile and the Trino catalog files
are read as data and checked against each other and against the DAGs: pinned
images, healthchecks, start order, secrets only from .env, Trino properties
valid for the pinned version, one bucket everywhere, and every connection and
pool the DAGs use defined by the stack. `docker compose config` runs as well
where the compose plugin exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
TRINO_CATALOGS = ROOT / "stack" / "trino" / "catalog"
POOLS = ROOT / "stack" / "airflow" / "pools.json"

TRINO_IMAGE = "trinodb/trino:476"
AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer"}
ONE_SHOT = {
    "airflow-init",
    "source-db-init",
    "source-seed",
    "acme-source-init",
    "acme-seed",
    "minio-init",
}
CELERY_COMMANDS = {"celery worker", "celery flower"}

# Catalog properties valid in Trino 476 (trino.io/docs/476: connector/iceberg,
# object-storage/metastores "REST catalog", object-storage/file-system-s3,
# connector/postgresql). Trino 476 fails at start on an unknown property; the
# legacy `hive.s3.*` file system is gone, and `fs.native-s3.enabled` is still
# the switch's name (renamed `fs.s3.enabled` only in Trino 481).
_S3_PROPERTIES = {
    "fs.native-s3.enabled",
    "s3.endpoint",
    "s3.region",
    "s3.path-style-access",
    "s3.cross-region-access",
    "s3.aws-access-key",
    "s3.aws-secret-key",
    "s3.iam-role",
    "s3.role-session-name",
    "s3.external-id",
    "s3.sts.endpoint",
    "s3.sts.region",
    "s3.storage-class",
    "s3.signer-type",
    "s3.canned-acl",
    "s3.sse.type",
    "s3.sse.kms-key-id",
    "s3.sse.customer-key",
    "s3.streaming.part-size",
    "s3.requester-pays",
    "s3.max-connections",
    "s3.connection-ttl",
    "s3.connection-max-idle-time",
    "s3.socket-connect-timeout",
    "s3.socket-read-timeout",
    "s3.tcp-keep-alive",
    "s3.http-proxy",
    "s3.http-proxy.secure",
    "s3.http-proxy.username",
    "s3.http-proxy.password",
    "s3.http-proxy.non-proxy-hosts",
    "s3.http-proxy.preemptive-basic-auth",
    "s3.retry-mode",
    "s3.max-error-retries",
}
ALLOWED_TRINO_PROPERTIES = {
    "iceberg": {
        "connector.name",
        "iceberg.catalog.type",
        "iceberg.rest-catalog.uri",
        "iceberg.rest-catalog.prefix",
        "iceberg.rest-catalog.warehouse",
        "iceberg.rest-catalog.security",
        "iceberg.rest-catalog.session",
        "iceberg.rest-catalog.oauth2.token",
        "iceberg.rest-catalog.oauth2.credential",
        "iceberg.rest-catalog.oauth2.scope",
        "iceberg.rest-catalog.oauth2.server-uri",
        "iceberg.rest-catalog.vended-credentials-enabled",
        "iceberg.rest-catalog.nested-namespace-enabled",
        "iceberg.rest-catalog.case-insensitive-name-matching",
        "iceberg.file-format",
        "iceberg.compression-codec",
        "iceberg.format-version",
        "iceberg.unique-table-location",
        "iceberg.register-table-procedure.enabled",
        "iceberg.max-partitions-per-writer",
        "iceberg.target-max-file-size",
        *_S3_PROPERTIES,
    },
    "postgresql": {
        "connector.name",
        "connection-url",
        "connection-user",
        "connection-password",
        "case-insensitive-name-matching",
        "postgresql.array-mapping",
        "postgresql.include-system-tables",
        "insert.non-transactional-insert.enabled",
        "join-pushdown.enabled",
        "unsupported-type-handling",
    },
}

_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")
_TRINO_ENV = re.compile(r"\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$|ACCESS_KEY", re.I)


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _substitute(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}; `$$` is a literal `$`."""
    resolved = _VAR.sub(lambda m: env.get(m.group(1), m.group(2) or ""), text)
    return resolved.replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose file as the stack sees it with .env.example's values."""
    text = _substitute(COMPOSE.read_text(encoding="utf-8"), _env_example())
    return yaml.safe_load(text)


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _airflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in _services(compose).items()
        if service.get("image", "").startswith("mozart-etl-airflow")
        and name not in ONE_SHOT
    }


def _properties(path: Path) -> dict[str, str]:
    properties: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            key, _, value = line.partition("=")
            properties[key.strip()] = value.strip()
    return properties


# --- the file itself -------------------------------------------------------------


def test_compose_parses_and_has_the_whole_stack(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert {
        "airflow-db",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "source-db",
        "source-seed",
        "minio",
        "minio-init",
        "iceberg-rest",
        "trino",
    } <= set(services)
    commands = {str(s.get("command")) for s in _airflow_services(compose).values()}
    assert commands == AIRFLOW_COMPONENTS | CELERY_COMMANDS
    for service in _airflow_services(compose).values():
        env = _environment(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
            "postgresql+psycopg2://airflow:${AIRFLOW_DB_PASSWORD}@airflow-db:5432/"
        )


def test_celery_profile_scales_out_on_redis_and_the_metadata_db(
    compose: dict[str, Any],
) -> None:
    """The `celery` profile: the same image as workers, Redis as broker, the
    metadata database as result backend (what tests/live/test_celery.py runs)."""
    services = _services(compose)
    for name in ("redis", "airflow-worker", "flower"):
        assert services[name].get("profiles") == ["celery"], name
    for name, service in services.items():
        if name not in ("redis", "airflow-worker", "flower"):
            assert "profiles" not in service, f"{name} must start without a profile"
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["flower"]["command"] == "celery flower"
    for name in ("airflow-worker", "flower"):
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
    for name, service in _airflow_services(compose).items():
        env = _environment(service)
        assert env["AIRFLOW__CELERY__BROKER_URL"] == (
            "redis://:${REDIS_PASSWORD}@redis:6379/0"
        ), name
        assert (
            env["AIRFLOW__CELERY__RESULT_BACKEND"]
            == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        ), name
    assert "${REDIS_PASSWORD}" in str(services["redis"]["command"])
    flower_env = _environment(services["flower"])
    assert flower_env["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"] == (
        "${FLOWER_USER}:${FLOWER_PASSWORD}"
    )
    example = _env_example()
    assert example["AIRFLOW_EXECUTOR"] == "LocalExecutor"  # Celery only when asked
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^apache-airflow-providers-celery==", requirements, re.M)
    assert re.search(r"^redis==", requirements, re.M)


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    """`docker compose config` where the compose plugin exists; this machine has
    only the `docker` client, so the YAML-level checks below carry the weight."""
    docker = shutil.which("docker")
    has_plugin = (
        docker is not None
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if has_plugin:
        assert docker is not None
        env_file = tmp_path / ".env"
        env_file.write_text(ENV_EXAMPLE.read_text(encoding="utf-8"))
        command = [docker, "compose", "--env-file", str(env_file), "-f"]
        result = subprocess.run(
            [*command, str(COMPOSE), "config", "--quiet"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    else:
        assert yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        image = service.get("image")
        assert image, f"{name}: no image"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"
    assert _services(compose)["trino"]["image"] == TRINO_IMAGE


def test_serving_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} is a one-shot job"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name}: no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_api_server_health_asks_the_execution_api(compose: dict[str, Any]) -> None:
    """Its first request builds the API the tasks call; the healthcheck makes it
    (and fails while the tasks could not reach it)."""
    check = " ".join(_services(compose)["airflow-apiserver"]["healthcheck"]["test"])
    assert "localhost:8080/execution/health" in check
    assert "localhost:8080/api/v2/version" in check


def test_start_order_waits_for_health_or_completion(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for other, rule in depends.items():
            assert other in services, f"{name} depends on unknown {other}"
            condition = rule.get("condition")
            if condition == "service_healthy":
                assert services[other].get("healthcheck"), (name, other)
            else:
                assert condition == "service_completed_successfully", (name, other)
                assert other in ONE_SHOT, (name, other)
    for name in _airflow_services(compose):
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"
        assert depends["airflow-db"]["condition"] == "service_healthy"


# --- secrets -----------------------------------------------------------------------


def test_secrets_come_only_from_env_references(compose: dict[str, Any]) -> None:
    example = _env_example()
    text = COMPOSE.read_text(encoding="utf-8")
    referenced = {m.group(1) for m in _VAR.finditer(text)}
    assert referenced <= set(example), (
        f"not in .env.example: {referenced - set(example)}"
    )
    # No secret value of .env.example is written anywhere in the stack's files.
    secret_values = {
        value for name, value in example.items() if _SECRET_NAME.search(name) and value
    }
    stack_files = [COMPOSE, DOCKERFILE, *sorted((ROOT / "stack").rglob("*"))]
    for path in stack_files:
        if path.is_file():
            content = path.read_text(encoding="utf-8")
            for value in secret_values:
                assert value not in content, f"{path.name} holds a literal secret"
    # Every secret-looking setting is a ${VAR} reference (or holds one).
    for name, service in _services(compose).items():
        for key, value in _environment(service).items():
            if _SECRET_NAME.search(key) or key.startswith("AIRFLOW_CONN_"):
                if key.startswith("AIRFLOW_CONN_MOZART_") and key.endswith("_TRINO"):
                    assert "password" not in value, name  # no password at all
                    continue
                assert _VAR.search(value), f"{name}.{key} is a literal"
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_trino_catalog_secrets_come_from_the_container_env(
    compose: dict[str, Any],
) -> None:
    trino_env = _environment(_services(compose)["trino"])
    for path in sorted(TRINO_CATALOGS.glob("*.properties")):
        properties = _properties(path)
        for key, value in properties.items():
            if "password" in key or "secret" in key or "access-key" in key:
                assert _TRINO_ENV.fullmatch(value), f"{path.name}: {key} is a literal"
        for name in _TRINO_ENV.findall(path.read_text(encoding="utf-8")):
            assert name in trino_env, f"{path.name} reads ${{ENV:{name}}}"


# --- Trino --------------------------------------------------------------------------


def test_trino_catalogs_use_only_properties_of_the_pinned_version() -> None:
    files = {path.stem: path for path in TRINO_CATALOGS.glob("*.properties")}
    assert set(files) == {"iceberg", "postgresql"}
    for name, path in files.items():
        properties = _properties(path)
        unknown = set(properties) - ALLOWED_TRINO_PROPERTIES[name]
        assert not unknown, f"{path.name}: not valid in Trino 476: {sorted(unknown)}"
        assert not [key for key in properties if key.startswith("hive.s3")]
        assert properties["connector.name"] == name
    iceberg = _properties(files["iceberg"])
    assert iceberg["iceberg.catalog.type"] == "rest"
    assert iceberg["fs.native-s3.enabled"] == "true"
    assert iceberg["s3.path-style-access"] == "true"
    assert iceberg["s3.endpoint"] == "http://minio:9000"
    assert iceberg["iceberg.rest-catalog.uri"] == "http://iceberg-rest:8181"
    assert _properties(files["postgresql"])["connection-url"].startswith(
        "jdbc:postgresql://source-db:5432/"
    )


# --- one bucket, one catalog: the tenant, MinIO, the REST catalog and Trino --------


def _stack_env(resolved: dict[str, Any]) -> dict[str, str]:
    return _environment(resolved["services"]["airflow-scheduler"])


def _stack_tenant(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tenant_id: str = "demo"
) -> TenantConfig:
    """A tenant as the stack's Airflow services load it (their environment)."""
    for key, value in _stack_env(resolved).items():
        monkeypatch.setenv(key, value)
    return load_tenant(ROOT / "tenants" / tenant_id)


def test_bucket_and_warehouse_agree_everywhere(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = resolved["services"]
    bucket = _env_example()["MOZART_BUCKET"]
    tenant = _stack_tenant(resolved, monkeypatch)

    minio_init = _environment(services["minio-init"])
    assert minio_init["MOZART_BUCKET"] == bucket
    assert 'mc mb --ignore-existing "stack/${MOZART_BUCKET}"' in str(
        services["minio-init"]["command"]
    )
    rest = _environment(services["iceberg-rest"])
    trino_env = _environment(services["trino"])
    trino_warehouse = _TRINO_ENV.sub(
        lambda m: trino_env[m.group(1)],
        _properties(TRINO_CATALOGS / "iceberg.properties")[
            "iceberg.rest-catalog.warehouse"
        ],
    )
    assert tenant.storage.lake_root == f"s3://{bucket}/lake"
    assert tenant.iceberg.catalog.warehouse == f"s3://{bucket}/iceberg"
    assert rest["CATALOG_WAREHOUSE"] == tenant.iceberg.catalog.warehouse
    assert trino_warehouse == tenant.iceberg.catalog.warehouse
    # The same object store and keys for the lake, the catalog and Trino: the
    # tenant names the Airflow AWS connection, which holds them (no key in YAML).
    s3 = tenant.storage.s3
    assert s3 is not None and s3.aws_conn_id == "mozart_lake"
    assert (s3.access_key_id, s3.secret_access_key) == (None, None)
    lake = json.loads(_stack_env(resolved)["AIRFLOW_CONN_MOZART_LAKE"])
    assert lake["conn_type"] == "aws"
    assert lake["extra"]["endpoint_url"] == rest["CATALOG_S3_ENDPOINT"]
    assert rest["CATALOG_S3_ENDPOINT"] == "http://minio:9000"
    assert lake["extra"]["region_name"] == _env_example()["S3_REGION"]
    assert lake["login"] == rest["AWS_ACCESS_KEY_ID"] == trino_env["MINIO_ROOT_USER"]
    assert (
        lake["password"]
        == rest["AWS_SECRET_ACCESS_KEY"]
        == trino_env["MINIO_ROOT_PASSWORD"]
    )


def test_the_demo_tenant_switches_to_the_stack_by_environment(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = resolved["services"]
    tenant = _stack_tenant(resolved, monkeypatch)
    assert str(tenant.source.type) == "postgresql"
    assert str(tenant.iceberg.catalog.type) == "rest"
    assert tenant.iceberg.catalog.uri == "http://iceberg-rest:8181"
    assert "8181:8181" in services["iceberg-rest"]["ports"]
    assert str(tenant.dbt.target) == "trino"
    assert tenant.dbt.trino is not None
    assert (tenant.dbt.trino.host, tenant.dbt.trino.port) == ("trino", 8080)
    assert tenant.dbt.trino.catalog == "iceberg"
    assert (TRINO_CATALOGS / f"{tenant.dbt.trino.catalog}.properties").is_file()


def test_connections_and_pools_the_dags_use_are_defined(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mozart_etl.factory.dag_factory import build_tenant_dags

    tenant = _stack_tenant(resolved, monkeypatch)
    env = _stack_env(resolved)
    dags = build_tenant_dags(ROOT / "tenants")
    assert "config-error" not in dags["demo"].tags

    assert tenant.source.conn_id == "mozart_demo_source"
    checked_at_init = env["MOZART_CONN_IDS"].split()
    assert tenant.source.conn_id in checked_at_init
    for conn_id in checked_at_init:
        conn = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        host = conn.get("host") or conn["extra"]["endpoint_url"].split("//")[1]
        assert host.split(":")[0] in resolved["services"], conn_id
    assert tenant.storage.s3 is not None
    assert tenant.storage.s3.aws_conn_id in checked_at_init
    assert tenant.dbt.trino is not None
    assert tenant.dbt.trino.conn_id == "mozart_demo_trino"
    assert tenant.dbt.trino.conn_id in checked_at_init
    source = json.loads(env["AIRFLOW_CONN_MOZART_DEMO_SOURCE"])
    example = _env_example()
    assert (source["conn_type"], source["port"]) == ("postgres", 5432)
    assert source["schema"] == example["SOURCE_DB_NAME"]
    # The tenant's own role (stack/source-db/create-tenant-roles.sh), not the admin.
    assert source["login"] == "mozart_demo" != example["SOURCE_DB_USER"]
    assert source["password"] == example["TENANT_DB_PASSWORD_DEMO"]

    pools = json.loads(POOLS.read_text(encoding="utf-8"))
    used = {task.pool for dag in dags.values() for task in dag.tasks} - {"default_pool"}
    assert tenant.dbt.pool in used
    assert used <= set(pools), f"pools not created by airflow-init: {used - set(pools)}"
    assert all(pool["slots"] >= 1 for pool in pools.values())
    init = (ROOT / "stack" / "airflow" / "init.sh").read_text(encoding="utf-8")
    assert "airflow pools import /opt/mozart/stack/airflow/pools.json" in init
    assert "airflow db migrate" in init and "airflow users create" in init


def test_init_scripts_exist_where_the_services_mount_them(
    compose: dict[str, Any],
) -> None:
    services = _services(compose)
    assert (
        services["airflow-init"]["command"][-1] == "/opt/mozart/stack/airflow/init.sh"
    )
    assert (ROOT / "stack" / "airflow" / "init.sh").is_file()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


# --- the image -----------------------------------------------------------------------


def test_dockerfile_matches_the_pinned_airflow_and_python() -> None:
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    (airflow,) = re.findall(r"^apache-airflow==([\d.]+)$", requirements, re.M)
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    (base,) = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert base == f"apache/airflow:{airflow}-python3.11"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'target-version = "py311"' in pyproject
    install = "pip install --compile --no-deps -r /opt/mozart/requirements.txt"
    assert install in dockerfile
    assert "-r /opt/mozart/stack/requirements-stack.txt" in dockerfile
    # The stack's extra pins agree with requirements.txt wherever both pin.
    pins = dict(re.findall(r"^([a-z0-9._-]+)==(\S+)$", requirements, re.M))
    stack = (ROOT / "stack" / "requirements-stack.txt").read_text(encoding="utf-8")
    stack_pins = dict(re.findall(r"^([a-z0-9._-]+)==(\S+)$", stack, re.M))
    assert "apache-airflow-providers-fab" in stack_pins
    assert {k: v for k, v in stack_pins.items() if k in pins} == {
        k: pins[k] for k in stack_pins if k in pins
    }
    assert "pip install --compile --no-deps -e /opt/mozart" in dockerfile
    assert "RUN mozart sync --check && mozart manifests" in dockerfile
    assert "AIRFLOW__CORE__DAGS_FOLDER=/opt/mozart/dags" in dockerfile
    # The PostgreSQL extract's COPY client (extract/connectors/pg_copy.py).
    assert "install -y --no-install-recommends postgresql-client" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".env", ".venv", ".mozart"} <= set(ignored)


def test_without_the_stack_env_the_demo_stays_local(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in _stack_env(resolved):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MOZART_HOME", str(tmp_path))
    tenant = load_tenant(ROOT / "tenants" / "demo")
    assert str(tenant.source.type) == "sqlite"
    assert tenant.source.conn_id is None
    assert tenant.source.database == str(tmp_path / "demo" / "source.sqlite")
    assert tenant.storage.lake_root == str(tmp_path / "lake")
    s3 = tenant.storage.s3
    assert s3 is not None
    assert (s3.aws_conn_id, s3.endpoint_url, s3.access_key_id) == (None, None, None)
    assert s3.secret_access_key is None
    assert str(tenant.iceberg.catalog.type) == "sql"
    assert (
        tenant.iceberg.catalog.uri == f"sqlite:///{tmp_path / 'iceberg' / 'catalog.db'}"
    )
    assert str(tenant.dbt.target) == "duckdb"
    assert tenant.dbt.duckdb_path == str(tmp_path / "warehouse" / "demo_marts.duckdb")


def test_airflow_services_fork_tasks_from_a_preloaded_server(
    compose: dict[str, Any],
) -> None:
    """Every Airflow service that starts tasks forks them from a server that
    imported the worker modules once (mozart_etl.factory.workers), and every
    preloaded module exists in the image's environment (this venv)."""
    import importlib.util

    from mozart_etl.factory.workers import FORKSERVER_PRELOAD

    for name, service in _airflow_services(compose).items():
        env = _environment(service)
        assert env.get("AIRFLOW__CORE__MP_START_METHOD") == "forkserver", name
        preload = env.get("AIRFLOW__CORE__MP_FORKSERVER_PRELOAD", "").split(",")
        assert tuple(preload) == FORKSERVER_PRELOAD, name
    for module in FORKSERVER_PRELOAD:
        assert importlib.util.find_spec(module) is not None, module
