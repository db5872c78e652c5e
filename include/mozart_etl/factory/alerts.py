"""A tenant's alert notifiers: e-mail and Slack, on a failed run and on a retry.

tenant.yaml's `alerting` names the channels; this module turns them into
Airflow notifiers (callbacks the scheduler or the task runner calls with the
run's context), so the secrets stay in Connections and the messages are Jinja
templates rendered from that context. The DAG factory hangs them on the DAG:

    on_failure_callback=failure_notifiers(tenant) or None       # the DAG
    default_args["on_retry_callback"] = retry_notifiers(tenant) or None  # tasks

The providers are imported when a tenant asks for a channel, never on a parse
that needs none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mozart_etl.config.models import AlertingConfig, TenantConfig

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    # What a DAG's and a task's callbacks take (notifiers are such callables).
    Notifier = Callable[[Context], None]

_FAILED = "[mozart] tenant {tenant}: run {{{{ run_id }}}} failed"
_RETRY = (
    "[mozart] tenant {tenant}: {{{{ ti.task_id }}}} failed try "
    "{{{{ ti.try_number }}}} of run {{{{ run_id }}}}, retrying"
)


def failure_notifiers(tenant: TenantConfig) -> list[Notifier]:
    """Notifiers for a failed run (the DAG's on_failure_callback)."""
    alerting = tenant.alerting
    if not alerting.on_failure:
        return []
    return _notifiers(alerting, _FAILED.format(tenant=tenant.tenant_id))


def retry_notifiers(tenant: TenantConfig) -> list[Notifier]:
    """Notifiers for a task attempt that failed and will retry (each task's
    on_retry_callback): empty unless `alerting.on_retry` asks for them."""
    alerting = tenant.alerting
    if not alerting.on_retry:
        return []
    return _notifiers(alerting, _RETRY.format(tenant=tenant.tenant_id))


def _notifiers(alerting: AlertingConfig, message: str) -> list[Notifier]:
    notifiers: list[Notifier] = []
    if alerting.emails:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        smtp: dict[str, Any] = {}
        if alerting.smtp_conn_id:  # unset: the provider's default connection
            smtp["smtp_conn_id"] = alerting.smtp_conn_id
        notifiers.append(SmtpNotifier(to=alerting.emails, subject=message, **smtp))
    if alerting.slack_webhook_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import (
            SlackWebhookNotifier,
        )

        notifiers.append(
            SlackWebhookNotifier(
                slack_webhook_conn_id=alerting.slack_webhook_conn_id, text=message
            )
        )
    return notifiers
