"""Tenants sharing one SQL catalog database open it at once on first use.

The embedded default keeps every tenant's catalog in one SQLite file; each
tenant's first task creates the catalog's own tables if missing, and two
doing so at once made one fail ("table iceberg_tables already exists", 1 in
10 live with four processes). Four processes released by a barrier, twenty
rounds, each on a fresh catalog: every process gets a working catalog.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.commit import ensure_namespace
from tests.helpers import make_tenant, table_dict

PROCESSES = 4
ROUNDS = 20


def _open(tmp: str, barrier: mp.synchronize.Barrier, errors: mp.Queue) -> None:
    tenant = make_tenant(
        Path(tmp), [table_dict("lots", [{"name": "id", "type": "bigint"}])]
    )
    barrier.wait()
    try:
        catalog = open_catalog(tenant)
        ensure_namespace(catalog, tenant.raw_namespace)
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_catalog_at_once_all_succeed(tmp_path: Path) -> None:
    context = mp.get_context("fork")
    failures: list[str] = []
    for round_ in range(ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        barrier = context.Barrier(PROCESSES)
        errors: mp.Queue = context.Queue()
        workers = [
            context.Process(target=_open, args=(str(folder), barrier, errors))
            for _ in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
            assert worker.exitcode == 0
        while not errors.empty():
            failures.append(errors.get())
        # One catalog, its tables made once: the namespace is there.
        tenant = make_tenant(
            folder, [table_dict("lots", [{"name": "id", "type": "bigint"}])]
        )
        assert (tenant.raw_namespace,) in open_catalog(tenant).list_namespaces()
    assert failures == []
