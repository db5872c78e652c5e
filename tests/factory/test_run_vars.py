"""The run's variables: one model, the same values through XCom and dbt."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

from mozart_etl.core.calendar import production_day
from mozart_etl.core.run_vars import DAY_TASK_ID, RunVars

ROOT = Path(__file__).resolve().parents[2]


def test_xcom_round_trip_keeps_the_resolved_window() -> None:
    # A day that starts at 08:00 in Seoul: bounds the date alone cannot give.
    window = production_day(date(2026, 11, 19), "Asia/Seoul", 8)
    run = RunVars.of(window, "2026-W47")
    payload = json.loads(json.dumps(run.to_xcom()))  # as Airflow stores it
    assert payload == {
        "production_day": "2026-11-19",
        "window_start": "2026-11-18T23:00:00+00:00",
        "window_end": "2026-11-19T23:00:00+00:00",
        "plan_ver": "2026-W47",
    }
    back = RunVars.from_xcom(payload)
    assert back == run
    assert back.window == window
    assert back.window.start == datetime(2026, 11, 18, 23, tzinfo=UTC)


def test_dbt_reads_every_variable_from_the_first_tasks_xcom() -> None:
    templates = RunVars.dbt_env_templates()
    assert sorted(templates) == [
        "MOZART_RUN_PLAN_VER",
        "MOZART_RUN_PRODUCTION_DAY",
        "MOZART_RUN_WINDOW_END",
        "MOZART_RUN_WINDOW_START",
    ]
    assert templates["MOZART_RUN_PLAN_VER"] == (
        f"{{{{ ti.xcom_pull(task_ids='{DAY_TASK_ID}')['plan_ver'] }}}}"
    )
    # mozart_core's run_var macro has a parse-time stand-in for each, and no
    # other: a variable added on one side only fails here.
    macro = (ROOT / "dbt/mozart_core/macros/production_day.sql").read_text()
    stand_ins = re.search(r"set stand_in = \{(.*?)\}", macro, re.S)
    assert stand_ins is not None
    names = set(re.findall(r'"(\w+)":', stand_ins.group(1)))
    assert names == set(RunVars.model_fields)
