"""`make up` / `make down`: a local Airflow 3 the way production runs it.

Scheduler, dag-processor, triggerer and API server (the UI) as background
processes, LocalExecutor, with `make demo`'s settings (`ops.local_env`: the
same AIRFLOW_HOME, metadata database, dags and tenants, so runs made by
`mozart run` show in the UI). Before starting them: the metadata database is
migrated, every tenant's pools are imported (`ops.pools`: without them tasks
wait silently) and every connection a tenant names is looked up, each missing
one named with the variable that defines it.

Each component runs in its own process group; its pid and log are kept under
`$AIRFLOW_HOME/up/`, and `down` stops exactly those groups. The UI listens on
127.0.0.1 only and lets every visitor in as admin (a one-user machine);
`MOZART_UP_PORT` moves it from 8080.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from mozart_etl.config.registry import load_all
from mozart_etl.ops.local_env import apply_defaults
from mozart_etl.ops.pools import pools_json, required_pools

log = logging.getLogger(__name__)

COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
DEFAULT_PORT = 8080
BIN = Path(sys.executable).parent


class LocalAirflowError(RuntimeError):
    """A component did not start or did not become healthy."""


def state_dir() -> Path:
    return Path(os.environ["AIRFLOW_HOME"]) / "up"


def environment(port: int) -> dict[str, str]:
    """The components' environment: the local defaults, LocalExecutor, the API
    on 127.0.0.1:`port`, and secrets the components must share (kept in the
    state folder so that a restart keeps sessions and encrypted values)."""
    from mozart_etl.factory.workers import FORKSERVER_PRELOAD

    apply_defaults()
    keys = _shared_secrets()
    url = f"http://127.0.0.1:{port}"
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__MP_START_METHOD": "forkserver",
        "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": ",".join(FORKSERVER_PRELOAD),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
    }


def _shared_secrets() -> dict[str, str]:
    path = state_dir() / "secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    from cryptography.fernet import Fernet

    keys = {
        "fernet_key": Fernet.generate_key().decode(),
        "api_secret_key": secrets.token_hex(16),
        "jwt_secret": secrets.token_hex(32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keys), encoding="utf-8")
    path.chmod(0o600)
    return keys


def setup(env: dict[str, str]) -> list[str]:
    """Migrate the metadata database, import every tenant's pools; returns the
    connections tenants name that the environment does not define."""
    _airflow(env, "db", "migrate")
    tenants = [e.valid_config() for e in load_all() if e.error is None]
    pools = state_dir() / "pools.json"
    pools.write_text(pools_json(required_pools(tenants)), encoding="utf-8")
    _airflow(env, "pools", "import", str(pools))
    log.info("pools imported from %s", pools)
    missing = []
    for tenant in tenants:
        for conn_id in tenant.connections().values():
            variable = f"AIRFLOW_CONN_{conn_id.upper()}"
            if variable not in env:
                missing.append(variable)
                log.warning(
                    "tenant %s: connection %r is not in the environment: export %s "
                    "before `make up`, or add it under Admin → Connections",
                    tenant.tenant_id,
                    conn_id,
                    variable,
                )
    return missing


def up(
    port: int = DEFAULT_PORT,
    components: Sequence[str] = COMPONENTS,
    timeout: float = 180,
    *,
    set_up: bool = True,
) -> str:
    """Set up (unless `set_up` is false: done already), start the components,
    wait until healthy; returns the UI's URL."""
    if running():
        raise LocalAirflowError(
            f"already up ({', '.join(running())}); `make down` first"
        )
    env = environment(port)
    if set_up:
        setup(env)
    url = f"http://127.0.0.1:{port}"
    try:
        for name in components:
            _spawn(name, port, env)
        wait_healthy(url, components, timeout)
    except BaseException:
        down()  # nothing half-started is left behind
        raise
    log.info("Airflow is up: %s (logs in %s)", url, state_dir())
    return url


def _spawn(name: str, port: int, env: dict[str, str]) -> None:
    folder = state_dir()
    args = [str(BIN / "airflow"), name]
    if name == "api-server":
        args += ["--host", "127.0.0.1", "--port", str(port)]
    with (folder / f"{name}.log").open("ab") as sink:
        process = subprocess.Popen(
            args,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: `down` stops it whole
        )
    (folder / f"{name}.pid").write_text(str(process.pid), encoding="utf-8")
    log.info("%s started (pid %d)", name, process.pid)


def wait_healthy(url: str, components: Sequence[str], timeout: float) -> None:
    """Until /api/v2/monitor/health reports every started component healthy."""
    wanted = {"metadatabase"} | {
        c.replace("-", "_") for c in components if c != "api-server"
    }
    deadline = time.monotonic() + timeout
    status: dict[str, dict[str, str]] = {}
    while time.monotonic() < deadline:
        dead = [name for name in components if name not in running()]
        if dead:
            raise LocalAirflowError(
                f"{', '.join(dead)} exited: see {state_dir()}/<name>.log"
            )
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as r:
                status = json.loads(r.read())
        except (OSError, urllib.error.URLError, ValueError):
            time.sleep(1)
            continue
        if all((status.get(n) or {}).get("status") == "healthy" for n in wanted):
            return
        time.sleep(1)
    raise LocalAirflowError(f"not healthy after {timeout:.0f} s: {status}")


def running() -> list[str]:
    """Components whose recorded process group is alive."""
    alive = []
    for pid_file in sorted(state_dir().glob("*.pid")):
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.killpg(int(pid_file.read_text()), 0)
            alive.append(pid_file.stem)
    return alive


def down(grace: float = 20) -> list[str]:
    """Stop the recorded process groups (SIGTERM, SIGKILL after `grace`)."""
    groups = {}
    for pid_file in state_dir().glob("*.pid"):
        with contextlib.suppress(ValueError):
            groups[pid_file.stem] = int(pid_file.read_text())
    for pgid in groups.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and running():
        time.sleep(0.3)
    for name in running():
        log.warning("%s ignored SIGTERM; killing its group", name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(groups[name], signal.SIGKILL)
    for name in groups:
        (state_dir() / f"{name}.pid").unlink(missing_ok=True)
    log.info("stopped: %s", ", ".join(sorted(groups)) or "nothing was running")
    return sorted(groups)


def _airflow(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(BIN / "airflow"), *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise LocalAirflowError(
            f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "status"], help="what to do")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("MOZART_UP_PORT", DEFAULT_PORT)),
        help="the API server's (UI's) port (default: MOZART_UP_PORT, else 8080)",
    )
    args = parser.parse_args(argv)
    apply_defaults()
    if args.action == "down":
        down()
    elif args.action == "status":
        sys.stdout.write(", ".join(running()) or "not running")
        sys.stdout.write("\n")
    else:
        try:
            url = up(args.port)
        except LocalAirflowError as exc:
            log.error("%s", exc)
            return 1
        sys.stdout.write(f"Airflow UI and API: {url}  (stop: make down)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
