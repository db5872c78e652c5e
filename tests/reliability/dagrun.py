"""A copy of the demo tenant under its own DAG id, run through Airflow's
`dag.test` (every task in this process, against the test metadata database),
and a minimal SMTP server that counts the failure e-mails it receives.
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

from mozart_etl.calendar import production_day

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
