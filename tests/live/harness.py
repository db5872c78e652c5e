"""A live Airflow for tests: scheduler, dag-processor, triggerer and api-server
as real background processes against a PostgreSQL metadata database.

`airflow dags test` skips the scheduler, the executor, pools, retries and
catchup; these tests go through them. One `AirflowServices` owns everything it
starts: a fresh AIRFLOW_HOME, a database created on the local PostgreSQL (a
copy of one that `airflow db migrate` migrated once per test run) and
dropped afterwards, and each component in its own process group (stopped by
that group's id, never by name). Logs stay in files under the home; on a
failure their tails are printed. Teardown checks that no process of ours and
no database is left behind.

    with AirflowServices(tenants_dir=..., mozart_home=...) as airflow:
        airflow.airflow("dags", "unpause", "demo")
        run = airflow.wait_for_run("demo", run_id, "success")
        airflow.api("GET", "/dags/demo/dagRuns").json()

Other tests (the browser test) use `api_url`, `login()` (`ADMIN_USER`,
`ADMIN_PASSWORD`) and `token()`. `auth_manager="fab"` runs the stack's FAB auth
manager instead of the simple one, initialized as the stack's airflow-init
does: the admin user, then the tenants' roles (stack/airflow/tenant_roles.py)
before the dag-processor starts.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psycopg
from cryptography.fernet import Fernet

from mozart_etl.factory.workers import FORKSERVER_PRELOAD

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POSTGRES_DSN = os.environ.get(
    "MOZART_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres"
)
POSTGRES_URL = os.environ.get(
    "MOZART_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
REDIS_URL = os.environ.get("MOZART_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("MOZART_TEST_REDIS_DB", "13"))
"""A Redis database number of its own: the broker's keys never mix with others'."""

PRELOAD = FORKSERVER_PRELOAD
"""Modules the LocalExecutor's forkserver imports up front, as the stack's
(mozart_etl.factory.workers)."""
TEST_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:12]
"""One id per test run, the same in every pytest-xdist worker (else this
process's): names the run's migrated metadata templates."""
ADMIN_USER = "admin"
ADMIN_PASSWORD = "mozart-live-admin"
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
TENANT_ROLES_SCRIPT = ROOT / "stack" / "airflow" / "tenant_roles.py"
TERMINAL_RUN_STATES = {"success", "failed"}
TIMINGS: dict[str, float] = {}
"""Wall times (seconds) tests record for the report at the end of the run."""


class LiveAirflowError(RuntimeError):
    """A component did not start, a run did not finish, or teardown left debris."""


@dataclass
class Process:
    """One background component: its process group and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pgid(self) -> int:
        return self.popen.pid  # start_new_session: the leader's pid is the group id

    def alive(self) -> bool:
        return _group_alive(self.pgid)


@dataclass
class AirflowServices:
    """Airflow 3 with its four components (and Celery workers) on free ports.

    `executor` is "LocalExecutor" or "CeleryExecutor"; with Celery, `celery_workers`
    workers start, named `worker<N>@<host>`, on Redis database `REDIS_DB` as broker
    and the metadata database as result backend. `env` overrides any variable.
    """

    tenants_dir: Path
    mozart_home: Path
    executor: str = "LocalExecutor"
    parallelism: int = 6
    celery_workers: int = 0
    celery_concurrency: int = 2
    pools: Mapping[str, int] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    components: Sequence[str] = COMPONENTS
    keep_home: bool = False
    auth_manager: str = "simple"
    """"simple" (users from a passwords file) or "fab" (the stack's)."""

    home: Path = field(init=False)
    database: str = field(init=False)
    api_port: int = field(init=False)
    processes: list[Process] = field(init=False, default_factory=list)
    _token: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mozart-live-airflow-"))
        self.database = f"mozart_live_{uuid.uuid4().hex[:10]}"
        self.api_port = free_port()
        self.process_env = self._environment()

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop(failed=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(failed=exc_type is not None)

    def start(self) -> None:
        """Database (a copy of the run's migrated one), then every component;
        wait until healthy."""
        started = time.monotonic()
        _interrupt_on_sigterm()  # `timeout`/CI stopping the tests still tears down
        _create_database(self.database, template=self._migrated_template())
        self._write_passwords_file()
        if self.executor == "CeleryExecutor":
            _flush_redis_db()
        log.info("metadata database %s copied from a migrated one", self.database)
        if self.auth_manager == "fab":
            self._init_fab()
        if self.pools:
            self.set_pools(self.pools)
        for component in self.components:
            self._spawn(component, _component_command(component, self.api_port))
        for index in range(1, self.celery_workers + 1):
            self._spawn(
                f"celery-worker{index}",
                self._worker_command(index),
                self._worker_env(index),
            )
        self.wait_healthy()
        log.info(
            "live Airflow up in %.1f s at %s", time.monotonic() - started, self.api_url
        )

    def _migrated_template(self) -> str:
        """The name of a metadata database migrated by `airflow db migrate`
        once per test run and auth manager (FAB adds its own tables).

        A migration costs ~20 CPU-seconds of Airflow and Alembic, and a run
        starts four deployments; each now copies the migrated database
        (`CREATE DATABASE … TEMPLATE`, well under a second). The first
        deployment that needs it migrates it, under a PostgreSQL advisory
        lock that the others (other pytest-xdist workers) wait on; the
        process that built it drops it when it exits."""
        name = f"mozart_live_tmpl_{self.auth_manager}_{TEST_RUN}"
        with _admin() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
            try:
                if not _database_exists(name):
                    _create_database(name)
                    try:
                        self.airflow(
                            "db",
                            "migrate",
                            timeout=300,
                            env={"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _url(name)},
                        )
                    except BaseException:
                        _drop_database(name)
                        raise
                    atexit.register(_drop_database, name)
                    log.info("metadata template %s migrated", name)
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
        return name

    def stop(self, failed: bool = False) -> None:
        """Stop every process group, drop the database; print logs if `failed`."""
        if failed:
            self.print_log_tails()
        _stop_groups([p.pgid for p in self.processes])
        for process in self.processes:
            if process.popen.poll() is None:
                process.popen.wait(timeout=5)
        leftovers = [p.name for p in self.processes if p.alive()]
        _drop_database(self.database)
        if self.executor == "CeleryExecutor":
            _flush_redis_db()
        if not (failed or self.keep_home):
            shutil.rmtree(self.home, ignore_errors=True)
        if leftovers:
            raise LiveAirflowError(f"processes still alive after stop: {leftovers}")
        if _database_exists(self.database):
            raise LiveAirflowError(f"database {self.database} still exists")

    def restart(self, names: Iterable[str]) -> None:
        """Stop and start components by name (e.g. after changing the env)."""
        wanted = set(names)
        stopping = [p for p in self.processes if p.name in wanted]
        _stop_groups([p.pgid for p in stopping])
        for process in stopping:
            self.processes.remove(process)
        for name in wanted:
            self._spawn(name, _component_command(name, self.api_port))
        self.wait_healthy()

    # -- talking to it -------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def airflow(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 180,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the `airflow` CLI against this deployment (`env` overrides
        some of its variables); output is captured."""
        result = subprocess.run(
            [str(BIN / "airflow"), *args],
            env={**self.process_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        if check and result.returncode != 0:
            raise LiveAirflowError(
                f"airflow {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def set_pools(self, pools: Mapping[str, int]) -> None:
        """Create or resize pools (`airflow pools import`, one CLI start)."""
        path = self.home / "pools.json"
        body = {
            name: {
                "slots": slots,
                "description": "tests/live",
                "include_deferred": False,
            }
            for name, slots in pools.items()
        }
        path.write_text(json.dumps(body), encoding="utf-8")
        self.airflow("pools", "import", str(path))

    def login(self, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
        """A JWT from the auth manager's login endpoint (simple or FAB)."""
        response = httpx.post(
            f"{self.api_url}/auth/token",
            json={"username": username, "password": password},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def token(self) -> str:
        if self._token is None:
            self._token = self.login()
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the public REST API (`/api/v2` + `path`) as the admin."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        response = httpx.request(
            method,
            f"{self.api_url}/api/v2{path}",
            headers=headers,
            timeout=60,
            **kwargs,
        )
        if response.status_code >= 400:
            raise LiveAirflowError(
                f"{method} {path}: {response.status_code} {response.text[:2000]}"
            )
        return response

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read the metadata database directly (task instance timings, hostnames)."""
        with psycopg.connect(f"{POSTGRES_DSN} dbname={self.database}") as conn:
            return conn.execute(query, params).fetchall()

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 180) -> None:
        """Until the dag-processor has serialized every one of `dag_ids`."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {
                row[0]
                for row in self.sql(
                    "SELECT dag_id FROM serialized_dag WHERE dag_id = ANY(%s)",
                    (list(wanted),),
                )
            }
            if found == wanted:
                return
            self._check_components()
            time.sleep(1)
        errors = self.api("GET", "/importErrors").json()
        raise LiveAirflowError(f"DAGs not parsed: {sorted(wanted - found)}; {errors}")

    def trigger(
        self,
        dag_id: str,
        run_id: str,
        *,
        logical_date: str | None = None,
        conf: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST a manual run (REST API), as the UI's trigger button does."""
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf or {}}
        return dict(self.api("POST", f"/dags/{dag_id}/dagRuns", json=body).json())

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        body = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100}).json()
        return list(body["dag_runs"])

    def wait_for_run(
        self, dag_id: str, run_id: str, state: str = "success", timeout: float = 300
    ) -> dict[str, Any]:
        """Poll the REST API until the run ends; raise unless it ends in `state`."""
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()
            if run["state"] in TERMINAL_RUN_STATES:
                break
            self._check_components()
            time.sleep(1)
        else:
            raise LiveAirflowError(f"{dag_id}/{run_id} still {run.get('state')}")
        if run["state"] != state:
            raise LiveAirflowError(
                f"{dag_id}/{run_id} ended {run['state']}, expected {state}: "
                f"{self.task_states(dag_id, run_id)}"
            )
        return run

    def wait_for_runs(
        self, dag_id: str, count: int, timeout: float = 300
    ) -> list[dict[str, Any]]:
        """Wait until `dag_id` has `count` runs, all finished; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.dag_runs(dag_id)
            if len(runs) >= count and all(
                r["state"] in TERMINAL_RUN_STATES for r in runs
            ):
                return runs
            self._check_components()
            time.sleep(1)
        raise LiveAirflowError(
            f"{dag_id}: expected {count} finished runs, have "
            f"{[(r['dag_run_id'], r['state']) for r in self.dag_runs(dag_id)]}"
        )

    def wait_for_backfills(self, dag_id: str, timeout: float = 120) -> None:
        """Until the scheduler has marked every backfill of `dag_id` completed
        (a new one is refused while one is open)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            open_backfills = self.sql(
                "SELECT count(*) FROM backfill "
                "WHERE dag_id = %s AND completed_at IS NULL",
                (dag_id,),
            )[0][0]
            if open_backfills == 0:
                return
            self._check_components()
            time.sleep(1)
        raise LiveAirflowError(f"{dag_id}: a backfill is still open")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        body = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"limit": 1000},
        ).json()
        return {ti["task_id"]: ti["state"] for ti in body["task_instances"]}

    def wait_healthy(self, timeout: float = 180) -> None:
        """Until /api/v2/monitor/health reports every started component healthy."""
        wanted = {"metadatabase"} | {
            {"dag-processor": "dag_processor"}.get(c, c)
            for c in self.components
            if c != "api-server"
        }
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_components()
            try:
                status = httpx.get(
                    f"{self.api_url}/api/v2/monitor/health", timeout=5
                ).json()
            except httpx.HTTPError:
                time.sleep(1)
                continue
            if all(
                (status.get(name) or {}).get("status") == "healthy" for name in wanted
            ):
                if "api-server" in self.components:
                    self._build_execution_api()
                return
            time.sleep(1)
        raise LiveAirflowError(f"not healthy after {timeout} s: {status}")

    def _build_execution_api(self) -> None:
        """One request to the execution API, the one task processes call.

        The api-server builds that API's versioned routes (Cadwyn, one set per
        API version) on its first request, not when it starts: ~2.5 s on the
        2-core machine, which the first task of every deployment waited for
        (docs/performance.md, seventh session). A deployment's health check
        makes the same request (docker-compose.yaml)."""
        started = time.monotonic()
        httpx.get(f"{self.api_url}/execution/health", timeout=60).raise_for_status()
        log.info("execution API built in %.1f s", time.monotonic() - started)

    # -- logs ---------------------------------------------------------------

    def log_tail(self, name: str, lines: int = 40) -> str:
        process = next(p for p in self.processes if p.name == name)
        text = process.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def print_log_tails(self, lines: int = 40) -> None:
        """Each component's last lines, and where the full logs are kept."""
        for process in self.processes:
            sys.stderr.write(
                f"\n===== {process.name} (pid {process.pgid}) {process.log_path} "
                f"=====\n{self.log_tail(process.name, lines)}\n"
            )
        sys.stderr.write(f"\nAirflow home kept at {self.home}\n")

    # -- internals -----------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "MOZART_"))
        }
        metadata = _url(self.database)
        env = {
            **base,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # dbt's parse state per tenant and lake, gone with the deployment.
            "AIRFLOW__COSMOS__CACHE_DIR": str(self.home / "cosmos"),
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                self.home / "passwords.json"
            ),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # Other Airflows on this machine use the default log-server ports.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # Tests wait on the scheduler: make its loops quick.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # The DAG files are parsed once at start (`wait_for_dags`) and never
            # change during a test: a re-parse every 20 s rebuilt a module's
            # dozens of tenants on one core beside the other worker's tests.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            # Dozens of tenants in one file on a loaded machine: parse patiently.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "180",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "240",
            # LocalExecutor workers fork from a server that imported the task
            # stack once: each task skips seconds of imports.
            "AIRFLOW__CORE__MP_START_METHOD": "forkserver",
            "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": ",".join(PRELOAD),
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "MOZART_PROJECT_ROOT": str(ROOT),
            "MOZART_HOME": str(self.mozart_home),
            "MOZART_TENANTS_DIR": str(self.tenants_dir),
        }
        if self.auth_manager == "fab":
            env["AIRFLOW__CORE__AUTH_MANAGER"] = FAB_AUTH_MANAGER
        if self.executor == "CeleryExecutor":
            env["AIRFLOW__CELERY__BROKER_URL"] = f"{REDIS_URL}/{REDIS_DB}"
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+{metadata}"
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.celery_concurrency)
        env.update(self.env)
        return env

    def _init_fab(self) -> None:
        """As the stack's airflow-init (stack/airflow/init.sh): the admin, then
        the roles tenant.yaml names, which must exist before the dag-processor
        writes the DAGs' access_control."""
        self.airflow(
            "users", "create", "--username", ADMIN_USER, "--password",
            ADMIN_PASSWORD, "--firstname", "Mozart", "--lastname", "Admin",
            "--email", f"{ADMIN_USER}@example.invalid", "--role", "Admin",
        )  # fmt: skip
        roles = subprocess.run(
            [str(BIN / "python"), str(TENANT_ROLES_SCRIPT)],
            env=self.process_env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if roles.returncode != 0:
            raise LiveAirflowError(
                f"{TENANT_ROLES_SCRIPT.name} exited {roles.returncode}:\n"
                f"{roles.stdout[-3000:]}\n{roles.stderr[-3000:]}"
            )
        log.info("tenant roles: %s", roles.stdout.strip())

    def _write_passwords_file(self) -> None:
        path = self.home / "passwords.json"
        path.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}), encoding="utf-8")

    def _worker_command(self, index: int) -> list[str]:
        return [
            "celery",
            "worker",
            "--celery-hostname",
            f"worker{index}@%h",
            "--concurrency",
            str(self.celery_concurrency),
            "--skip-serve-logs",
        ]

    def _worker_env(self, index: int) -> dict[str, str]:
        """One worker's identity: its own host name in the task instances."""
        return {
            **self.process_env,
            "MOZART_LIVE_WORKER": f"worker{index}",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.live.worker_identity.hostname",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT), self.process_env.get("PYTHONPATH")])
            ),
        }

    def _spawn(
        self, name: str, args: list[str], env: Mapping[str, str] | None = None
    ) -> None:
        log_path = self.home / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as sink:
            popen = subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env=dict(env or self.process_env),
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )
        self.processes.append(Process(name, popen, log_path))

    def _check_components(self) -> None:
        dead = [p.name for p in self.processes if p.popen.poll() is not None]
        if dead:
            raise LiveAirflowError(f"component(s) exited: {dead}")


def _interrupt_on_sigterm() -> None:
    """SIGTERM ends Python without running `finally` blocks; make it an interrupt
    so that teardown (processes, database) still runs."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _component_command(name: str, api_port: int) -> list[str]:
    if name == "api-server":
        return ["api-server", "--host", "127.0.0.1", "--port", str(api_port)]
    return [name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _group_has_live_members(pgid)


def _group_has_live_members(pgid: int) -> bool:
    """killpg(0) also succeeds for zombies; look for a member that is not one.
    A process may vanish between listing /proc and reading its stat (pathlib's
    glob itself raised ProcessLookupError once): each read is guarded."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _stop_groups(pgids: Sequence[int], grace: float = 20) -> None:
    """SIGTERM whole process groups at once, SIGKILL what is left after `grace`."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(_group_alive(pgid) for pgid in pgids):
            return
        time.sleep(0.2)
    for pgid in pgids:
        if _group_alive(pgid):
            log.warning("process group %d ignored SIGTERM; killing it", pgid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    time.sleep(0.5)


def _admin() -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(f"{POSTGRES_DSN} dbname=postgres", autocommit=True)


def _url(database: str) -> str:
    return f"{POSTGRES_URL}/{database}"


def _create_database(name: str, template: str | None = None) -> None:
    """A new database, empty or a copy of `template`. A copy needs the
    template without sessions: the migration's just ended, and PostgreSQL
    may still be closing them, so "in use" is retried (for up to 30 s)."""
    statement = f'CREATE DATABASE "{name}"'
    if template is not None:
        statement += f' TEMPLATE "{template}"'
    deadline = time.monotonic() + 30
    with _admin() as conn:
        while True:
            try:
                conn.execute(statement)
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database_exists(name: str) -> bool:
    with _admin() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return row.fetchone() is not None


def _flush_redis_db() -> None:
    """Empty our broker database (and only it): no task message outlives a test."""
    import redis

    client = redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}")
    try:
        client.flushdb()
    finally:
        client.close()
