"""The environment of a local Airflow: the settings `make demo` exports, in one
place, so `mozart run`, `make up` and the Makefile agree.

Airflow reads its configuration when it is first imported: `apply_defaults`
must run before anything imports Airflow. A variable already set (by `make`,
the stack or the user) wins: these are defaults, never overrides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mozart_etl.config.paths import project_root


def local_defaults(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the Makefile exports (`make demo`), for this checkout."""
    environ = os.environ if environ is None else environ
    root = project_root()
    home = Path(environ.get("MOZART_HOME") or root / ".mozart")
    return {
        "MOZART_HOME": str(home),
        "MOZART_PROJECT_ROOT": str(root),
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def apply_defaults() -> dict[str, str]:
    """Set every local default the environment lacks; returns what is in effect."""
    for key, value in local_defaults().items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in local_defaults()}


def metadata_is_sqlite(environ: Mapping[str, str] | None = None) -> bool:
    """Airflow's default metadata database (a SQLite file in AIRFLOW_HOME)."""
    environ = os.environ if environ is None else environ
    conn = environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    return not conn or conn.startswith("sqlite")
