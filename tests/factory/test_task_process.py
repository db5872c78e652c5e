"""What a task process has loaded before a task's callable runs.

bench/bench_extract.py times the extract "as a task pays it": from the point
where the modules below are loaded. This keeps that claim true as Airflow,
Cosmos and our factory change.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DAG_FILE = Path(__file__).parents[2] / "dags" / "mozart_tenants.py"
# Loaded by parsing the DAG file (the bench imports them before its clock).
PRELOADED = ["sqlalchemy.dialects.postgresql", "pydantic", "mozart_etl.config.models"]
# Not loaded: the extract task imports them itself (the bench's clock runs).
TASK_IMPORTS = ["pyarrow", "numpy", "psycopg", "mozart_etl.extract.extractor"]

PROBE = """
import json, runpy, sys
import airflow.sdk.execution_time.task_runner  # the process that runs a task
runpy.run_path(sys.argv[1])  # it parses the DAG file to find the task
print(json.dumps({name: name in sys.modules for name in sys.argv[2:]}))
"""


def test_parsing_the_dag_file_loads_sqlalchemy_and_config_but_not_pyarrow() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAG_FILE), *PRELOADED, *TASK_IMPORTS],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(probe.stdout.strip().splitlines()[-1])
    assert loaded == {
        **dict.fromkeys(PRELOADED, True),
        **dict.fromkeys(TASK_IMPORTS, False),
    }
