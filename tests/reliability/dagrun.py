"""A copy of the demo tenant under its own DAG id, run through Airflow's
`dag.test` (every task in this process, against the test metadata database),
what its tasks returned (XCom), and a minimal SMTP server that counts the
failure e-mails it receives.

In the default DAG shape a table's sync is one task (`sync.<table>`) and a dbt
layer one `dbt build` task (`dbt_staging`, `dbt_marts`): a layer builds every
model of the layer, so a scenario that runs a layer for real runs every
table's sync before it.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mozart_etl.core.calendar import production_day

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tenants" / "demo"


def copy_demo(
    tenants: Path, tenant_id: str, change: Callable[[dict[str, Any]], None]
) -> Path:
    """tenants/<tenant_id>: the demo's folder (prebuilt dbt manifests included)
    with its tenant.yaml edited by `change`."""
    target = tenants / tenant_id
    shutil.copytree(DEMO, target, symlinks=True, ignore=shutil.ignore_patterns("logs"))
    path = target / "tenant.yaml"
    config = yaml.safe_load(path.read_text())
    config["tenant_id"] = tenant_id
    config["dbt"]["pool"] = f"mozart_duckdb_{tenant_id}"
    config["dbt"]["duckdb_path"] = (
        f"${{MOZART_HOME}}/warehouse/{tenant_id}_marts.duckdb"
    )
    change(config)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return target


def sync_dbt_files(folder: Path) -> None:
    """The copy's generated dbt files (`mozart sync`) for its own tenant id: raw
    sources in `<id>_raw`, mart contracts accepting `tenant_id = <id>` (the
    demo's accept `demo`). Needed by a copy whose marts dbt builds."""
    from mozart_etl.config.loader import load_tenant
    from mozart_etl.dbt.sources import generated_files, sync_file

    tenant = load_tenant(folder)
    for path, content in generated_files(folder, tenant).items():
        sync_file(path, content, check=False)


def run_day(tenant_id: str, day: date, *, mark_success: str | None = None) -> DagRun:
    """One run of the tenant's DAG for production day `day` (as `make demo`);
    tasks whose id fully matches `mark_success` are marked, not run."""
    from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    dag = bag.dags[tenant_id]
    window = production_day(day, "Asia/Seoul")
    return dag.test(
        logical_date=window.end,
        run_conf={"production_day": day.isoformat()},
        mark_success_pattern=mark_success,
    )


class SmtpSink:
    """Accepts SMTP sessions on 127.0.0.1 and keeps each message's text."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with client, client.makefile("rwb") as stream:
                self._session(stream)

    def _session(self, stream: Any) -> None:
        def reply(line: str) -> None:
            stream.write(line.encode() + b"\r\n")
            stream.flush()

        reply("220 chaos-smtp ready")
        while line := stream.readline():
            command = line.decode(errors="replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                reply("250 chaos-smtp")
            elif command == "DATA":
                reply("354 end with <CRLF>.<CRLF>")
                body = []
                while (data := stream.readline()) not in (b".\r\n", b""):
                    body.append(data.decode(errors="replace"))
                self.messages.append("".join(body))
                reply("250 queued")
            elif command == "QUIT":
                reply("221 bye")
                return
            else:  # MAIL FROM, RCPT TO, RSET, NOOP
                reply("250 ok")


def xcom(run: DagRun, task_id: str, key: str = "return_value") -> Any:
    """What the run's task pushed under `key` (its return value by default)."""
    ti = run.get_task_instance(task_id)
    assert ti is not None, task_id
    return ti.xcom_pull(task_ids=task_id, key=key)


def dbt_nodes(run: DagRun, task_id: str) -> dict[str, str]:
    """A dbt layer task's nodes as its last try reported them (XCom `models`):
    name → dbt status (success, error, pass, fail, skipped, …)."""
    outcomes = xcom(run, task_id, key="models") or []
    return {outcome["name"]: outcome["status"] for outcome in outcomes}
