"""How a task reaches a tenant's systems: tenant.yaml's settings, overlaid by an
Airflow connection when one is named, every secret registered with Airflow's
log masker.

The one owner of this for the task wrappers (`factory/tasks.py`) and for
`mozart check` (`onboarding/check.py`): the onboarding dry-run opens the source
exactly as the extract task does. Light at import (Airflow and the drivers load
inside the functions): the DAG parse path imports it through `tasks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from mozart_etl.config.models import TenantConfig
from mozart_etl.credentials import Credentials
from mozart_etl.errors import ConfigError

if TYPE_CHECKING:
    from mozart_etl.extract.connectors import Connector

CredentialsT = TypeVar("CredentialsT", bound=Credentials)


def source_connector(tenant: TenantConfig) -> Connector:
    """The tenant's source as its extract task opens it (an Airflow connection
    if `source.conn_id` names one), the password masked in the logs."""
    from mozart_etl.extract.connectors import connector_for

    credentials = with_connection(
        Credentials.from_settings(tenant.source),
        tenant.source.conn_id,
        tenant=tenant.tenant_id,
    )
    return connector_for(tenant.source.type, credentials)


def with_connection(
    credentials: CredentialsT, conn_id: str | None, *, tenant: str
) -> CredentialsT:
    """tenant.yaml's settings, overlaid by an Airflow connection when one is named
    (so secrets can stay in Airflow); the password, in every form, is registered
    with Airflow's log masker. A connection Airflow does not know is a
    ConfigError (terminal) saying how to define it."""
    if conn_id is None:
        mask_secrets(credentials.secret_forms())
        return credentials
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConfigError(
            f"the Airflow connection {conn_id!r} is not defined: set "
            f"AIRFLOW_CONN_{conn_id.upper()} in the environment of the scheduler "
            "and workers, or add it under Admin → Connections",
            tenant=tenant,
        ) from None
    resolved = credentials.overlaid(
        host=conn.host,
        port=conn.port,
        database=conn.schema,
        user=conn.login,
        password=conn.password,
    )
    mask_secrets(resolved.secret_forms())
    return resolved


def mask_secrets(forms: list[str]) -> None:
    """Register every form of a secret with Airflow's log masker: drivers and
    their errors may echo the request or URL that carried it."""
    from airflow.sdk.log import mask_secret

    for form in forms:
        mask_secret(form)


__all__ = ["CredentialsT", "mask_secrets", "source_connector", "with_connection"]
