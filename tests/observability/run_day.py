"""Run a tenant DAG for a day in a fresh process (`-m tests.observability.run_day`).

A fresh process because the openlineage provider reads its settings once per
process: the caller sets `AIRFLOW__OPENLINEAGE__TRANSPORT` for this run only.
Every DAG in the folder is synced first and the example consumer unpaused, so
the asset events of the run can queue it as the scheduler would.
"""

from __future__ import annotations

import sys
from datetime import date

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
from airflow.models.dag import DagModel
from airflow.utils.session import create_session

from mozart_etl.demo.run import run_tenant_day


def sync_and_unpause(dag_ids: list[str]) -> None:
    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(
            dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name
        )
        sync_bag_to_db(bag, bundle.name, bundle.version)
    with create_session() as session:
        for dag_id in dag_ids:
            model = session.get(DagModel, dag_id)
            assert model is not None, f"{dag_id} was not synced"
            model.is_paused = False


def main(tenant_id: str, day: str, *consumers: str) -> int:
    sync_and_unpause(list(consumers))
    run = run_tenant_day(tenant_id, date.fromisoformat(day))
    state = str(run.state)
    print(f"RUN_ID={run.run_id}")
    print(f"RUN_STATE={state}")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
