"""How a task reaches a tenant's systems: tenant.yaml's settings, overlaid by an
Airflow connection when one is named, every secret registered with Airflow's
log masker.

The one owner of this for the task wrappers (`factory/tasks.py`) and for
`mozart check` (`onboarding/check.py`): the onboarding dry-run opens the source
exactly as the extract task does. Light at import (Airflow and the drivers load
inside the functions): the DAG parse path imports it through `tasks`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import S3Config, TenantConfig
from mozart_etl.core.credentials import Credentials, S3Access, secret_forms
from mozart_etl.core.errors import ConfigError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from mozart_etl.extract.connectors import Connector

log = logging.getLogger(__name__)

CredentialsT = TypeVar("CredentialsT", bound=Credentials)


def source_connector(tenant: TenantConfig) -> Connector:
    """The tenant's source as its extract task opens it (an Airflow connection
    if `source.conn_id` names one), the password masked in the logs."""
    from mozart_etl.extract.connectors import connector_for

    credentials = with_connection(
        Credentials.from_settings(tenant.source),
        tenant.source.conn_id,
        tenant=tenant.tenant_id,
        driver=tenant.source.type,
    )
    return connector_for(tenant.source.type, credentials)


DRIVER_OPTIONS: dict[SourceType, frozenset[str]] = {
    # libpq's keywords (those psql also understands, so the COPY client opens
    # the same session), less what the connection's own fields give and
    # `options`, which would replace the extract's session settings.
    SourceType.POSTGRESQL: frozenset(
        "connect_timeout application_name keepalives keepalives_idle "  # noqa: SIM905
        "keepalives_interval keepalives_count tcp_user_timeout sslmode "
        "sslcompression sslcert sslkey sslrootcert sslcrl sslcrldir sslsni "
        "requirepeer ssl_min_protocol_version ssl_max_protocol_version "
        "gssencmode krbsrvname gsslib target_session_attrs channel_binding".split()
    ),
    # PyMySQL's connect() arguments that take a scalar.
    SourceType.MYSQL: frozenset(
        "charset collation connect_timeout read_timeout write_timeout "  # noqa: SIM905
        "ssl_ca ssl_cert ssl_key ssl_verify_cert ssl_verify_identity "
        "ssl_disabled local_infile".split()
    ),
    SourceType.MSSQL: frozenset(
        "driver Encrypt TrustServerCertificate authentication "  # noqa: SIM905
        "ApplicationIntent MultiSubnetFailover LoginTimeout".split()
    ),
    SourceType.ORACLE: frozenset({"service_name"}),
}
"""The connection extras a driver receives (as tenant.yaml's `options`).
An extra also carries Airflow's own keys (a provider's `cursor`, `iam`,
`aws_conn_id` …) that a driver would refuse: only these pass."""


def with_connection(
    credentials: CredentialsT,
    conn_id: str | None,
    *,
    tenant: str,
    driver: SourceType = SourceType.POSTGRESQL,
) -> CredentialsT:
    """tenant.yaml's settings, overlaid by an Airflow connection when one is named
    (so secrets can stay in Airflow), the connection's extras for `driver`
    (sslmode, charset …) over tenant.yaml's options; the password, in every
    form, is registered with Airflow's log masker. A connection Airflow does
    not know is a ConfigError (terminal) saying how to define it."""
    if conn_id is None:
        mask_secrets(credentials.secret_forms())
        return credentials
    conn = airflow_connection(conn_id, tenant=tenant)
    resolved = credentials.overlaid(
        host=conn.host,
        port=conn.port,
        database=conn.schema,
        user=conn.login,
        password=conn.password,
        options=driver_options(conn.extra_dejson, driver, conn_id=conn_id),
    )
    mask_secrets(resolved.secret_forms())
    return resolved


def driver_options(
    extra: Mapping[str, Any], driver: SourceType, *, conn_id: str
) -> dict[str, str | int | float | bool]:
    """The extras `driver` understands; the others are named in the log (never
    their values: an extra may hold a key)."""
    allowed = DRIVER_OPTIONS.get(driver, frozenset())
    options = {
        key: value
        for key, value in extra.items()
        if key in allowed and isinstance(value, str | int | float | bool)
    }
    ignored = sorted(set(extra) - set(options))
    if ignored:
        log.info(
            "connection %s: extra %s not passed to the %s driver",
            conn_id,
            ", ".join(ignored),
            driver,
        )
    return options


def airflow_connection(conn_id: str, *, tenant: str | None) -> Connection:
    """An Airflow connection, or a ConfigError (terminal) saying how to define
    it: a missing connection is a deployment's mistake, never worth a retry."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConfigError(
            f"the Airflow connection {conn_id!r} is not defined: set "
            f"AIRFLOW_CONN_{conn_id.upper()} in the environment of the scheduler "
            "and workers, or add it under Admin → Connections",
            tenant=tenant,
        ) from None


def aws_s3_access(settings: S3Config, *, tenant: str | None) -> S3Access:
    """The lake's endpoint, region and keys from the Airflow AWS connection
    `settings.aws_conn_id`, through the amazon provider's hook: static keys,
    an assumed role or the provider's default chain alike, and the extra's
    `endpoint_url` (or its `service_config.s3.endpoint_url`) and
    `region_name`, which win over tenant.yaml's. Imported here, at task run
    time: the provider (and boto3) must stay off the DAG parse path. The keys
    are registered with the log masker before any client sees them."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    conn_id = settings.aws_conn_id
    if conn_id is None:
        raise ValueError("aws_s3_access needs storage.s3.aws_conn_id")
    airflow_connection(conn_id, tenant=tenant)  # the provider would fall back silently
    hook: AwsGenericHook[Any] = AwsGenericHook(aws_conn_id=conn_id, client_type="s3")
    wrapper = hook.conn_config
    region = wrapper.region_name or settings.region
    frozen = hook.get_session(region_name=region).get_credentials()
    keys = frozen.get_frozen_credentials() if frozen is not None else None
    access = S3Access(
        endpoint_url=wrapper.get_service_endpoint_url("s3") or settings.endpoint_url,
        region=region,
        access_key_id=keys.access_key if keys else None,
        secret_access_key=SecretStr(keys.secret_key) if keys else None,
        session_token=SecretStr(keys.token) if keys and keys.token else None,
    )
    mask_secrets(access.secret_forms())
    return access


REST_CATALOG_EXTRAS = frozenset(
    "token credential scope audience resource oauth2-server-uri "  # noqa: SIM905
    "prefix warehouse".split()
)
"""Connection extras passed to PyIceberg's REST catalog as they are (besides
any `header.*` and `rest.*` property)."""


def rest_catalog_properties(conn_id: str, *, tenant: str | None) -> dict[str, str]:
    """PyIceberg REST catalog properties from an Airflow connection: `uri`
    from host (a URL, or a name with port and schema = http/https), the
    OAuth2 client `credential` from login:password, extras as listed in
    REST_CATALOG_EXTRAS; the secrets are registered with the log masker."""
    conn = airflow_connection(conn_id, tenant=tenant)
    host = conn.host or ""
    if "://" in host:
        uri = host
    else:
        scheme = conn.schema if conn.schema in ("http", "https") else "http"
        uri = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    properties = {"uri": uri.rstrip("/")}
    if conn.login and conn.password:
        properties["credential"] = f"{conn.login}:{conn.password}"
    for key, value in conn.extra_dejson.items():
        passes = key in REST_CATALOG_EXTRAS or key.startswith(("header.", "rest."))
        if passes and isinstance(value, str | int | float | bool):
            properties[key] = str(value)
    secrets = [properties.get("token"), conn.password]
    if "credential" in properties:
        secrets.append(properties["credential"])
    for secret in secrets:
        if secret:
            mask_secrets(secret_forms(secret))
    return properties


def mask_secrets(forms: list[str]) -> None:
    """Register every form of a secret with Airflow's log masker: drivers and
    their errors may echo the request or URL that carried it."""
    from airflow.sdk.log import mask_secret

    for form in forms:
        mask_secret(form)


__all__ = [
    "CredentialsT",
    "airflow_connection",
    "aws_s3_access",
    "driver_options",
    "mask_secrets",
    "rest_catalog_properties",
    "source_connector",
    "with_connection",
]
