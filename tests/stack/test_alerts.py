"""Per-tenant alerts: failure e-mails through Airflow's notifier, self-pausing DAGs."""

from __future__ import annotations

from pathlib import Path

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.serialization.serialized_objects import DagSerialization

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import AlertingConfig
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
