"""Per-tenant alerts: failure and retry notices through Airflow's notifiers
(e-mail, Slack), self-pausing DAGs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.serialization.serialized_objects import DagSerialization
from pydantic import ValidationError

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import AlertingConfig, TenantConfig
from mozart_etl.factory.alerts import failure_notifiers, retry_notifiers
from mozart_etl.factory.dag_factory import build_tenant_dag

DEMO = Path(__file__).resolve().parents[2] / "tenants" / "demo"


def test_alerting_settings_reach_the_dag() -> None:
    demo = load_tenant(DEMO)
    alerting = AlertingConfig(
        emails=["aps-oncall@example.com", "plant@example.com"],
        smtp_conn_id="smtp_mozart",
        max_consecutive_failed_runs=3,
    )
    dag = build_tenant_dag(DEMO, demo.model_copy(update={"alerting": alerting}))

    assert dag.max_consecutive_failed_dag_runs == 3
    (notifier,) = dag.on_failure_callback
    assert isinstance(notifier, SmtpNotifier)
    assert list(notifier.to) == ["aps-oncall@example.com", "plant@example.com"]
    assert notifier.smtp_conn_id == "smtp_mozart"
    assert notifier.subject == "[mozart] tenant demo: run {{ run_id }} failed"
    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert restored.max_consecutive_failed_dag_runs == 3
    assert restored.has_on_failure_callback


def test_no_alerts_by_default() -> None:
    dag = build_tenant_dag(DEMO, load_tenant(DEMO))
    assert dag.max_consecutive_failed_dag_runs == 0
    assert not dag.on_failure_callback
    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert not restored.has_on_failure_callback


def test_alerts_off_keeps_emails_silent() -> None:
    demo = load_tenant(DEMO)
    alerting = AlertingConfig(emails=["aps-oncall@example.com"], on_failure=False)
    dag = build_tenant_dag(DEMO, demo.model_copy(update={"alerting": alerting}))
    assert not dag.on_failure_callback


def test_retry_alerts_reach_every_task() -> None:
    demo = load_tenant(DEMO)
    alerting = AlertingConfig(emails=["aps-oncall@example.com"], on_retry=True)
    dag = build_tenant_dag(DEMO, demo.model_copy(update={"alerting": alerting}))
    subjects = set()
    for task in dag.tasks:
        (notifier,) = task.on_retry_callback
        assert isinstance(notifier, SmtpNotifier), task.task_id
        subjects.add(notifier.subject)
    assert subjects == {
        "[mozart] tenant demo: {{ ti.task_id }} failed try {{ ti.try_number }} "
        "of run {{ run_id }}, retrying"
    }
    quiet = build_tenant_dag(DEMO, demo)
    assert all(not task.on_retry_callback for task in quiet.tasks)


# --- alerts module: retries and Slack (mozart_etl.factory.alerts) ----------------


def _with_alerting(**settings: object) -> TenantConfig:
    return load_tenant(DEMO).model_copy(update={"alerting": AlertingConfig(**settings)})


def test_retry_alerts_are_off_unless_asked_for() -> None:
    tenant = _with_alerting(emails=["aps-oncall@example.com"])
    assert retry_notifiers(tenant) == []
    (email,) = failure_notifiers(tenant)
    assert isinstance(email, SmtpNotifier)


def test_retry_alerts_go_to_every_channel() -> None:
    tenant = _with_alerting(
        emails=["aps-oncall@example.com"],
        smtp_conn_id="smtp_mozart",
        slack_webhook_conn_id="slack_aps",
        on_retry=True,
    )
    email, slack = retry_notifiers(tenant)
    assert isinstance(email, SmtpNotifier)
    assert list(email.to) == ["aps-oncall@example.com"]
    assert email.smtp_conn_id == "smtp_mozart"
    assert email.subject == (
        "[mozart] tenant demo: {{ ti.task_id }} failed try {{ ti.try_number }}"
        " of run {{ run_id }}, retrying"
    )
    assert isinstance(slack, SlackWebhookNotifier)
    assert slack.slack_webhook_conn_id == "slack_aps"
    assert slack.text == email.subject


def test_slack_alone_is_a_channel() -> None:
    tenant = _with_alerting(slack_webhook_conn_id="slack_aps")
    (slack,) = failure_notifiers(tenant)
    assert isinstance(slack, SlackWebhookNotifier)
    assert slack.text == "[mozart] tenant demo: run {{ run_id }} failed"


def test_retry_alerts_without_a_channel_are_refused() -> None:
    """on_retry was accepted and silently ignored; now it needs somewhere to go."""
    with pytest.raises(ValidationError, match="on_retry needs a channel"):
        AlertingConfig(on_retry=True)


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "json": json.loads(body)})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:  # quiet test output
        pass


def test_slack_retry_alert_is_posted_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notifier really posts, to a local webhook, the message rendered from
    the retrying task's context."""
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/services/T0/B0/secret"
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLACK_APS",
            json.dumps({"conn_type": "slackwebhook", "password": url}),
        )
        tenant = _with_alerting(slack_webhook_conn_id="slack_aps", on_retry=True)
        (slack,) = retry_notifiers(tenant)
        task = SimpleNamespace(task_id="sync.lot_history", try_number=2)
        slack({"run_id": "day_2026-11-19", "ti": task})
    finally:
        server.shutdown()
    (post,) = _Webhook.received
    assert post["path"] == "/services/T0/B0/secret"
    assert post["json"]["text"] == (
        "[mozart] tenant demo: sync.lot_history failed try 2 of run "
        "day_2026-11-19, retrying"
    )
