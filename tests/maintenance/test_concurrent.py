"""A load beside compaction loses nothing: both released at the same instant.

Two long-lived spawned processes, one compacting the tenant's raw tables, one
loading the next production day into them, are released together by a
`multiprocessing.Barrier` (never by sleeps). Every other race also holds both
at their first snapshot commit until both got there (a second barrier inside
`SqlCatalog.commit_table`), so both commit against the same snapshot and one
must lose. A load that loses fails with a retryable `LoadError` and is run
again, as Airflow would retry it; a compaction that loses starts again on its
own (or defers). After every race each raw table must hold exactly the rows a
twin tenant holds that got the same loads one after the other and was never
compacted (the oracle), and no refused attempt may leave a data file behind.

`MOZART_MAINTENANCE_RACES` (default 4) sets the number of races.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog import Catalog

from mozart_etl.config.models import TenantConfig
from mozart_etl.load.catalog import open_catalog
from mozart_etl.ops.sweep import referenced_files
from tests.maintenance import history

RACES = int(os.environ.get("MOZART_MAINTENANCE_RACES", "4"))
BARRIER_SECONDS = 60.0
TABLES = ("lots", "items")
UNSTABLE = ["_mozart_loaded_at"]  # the instant of each load: differs by nature


@dataclass
class Outcome:
    ok: bool
    error: str = ""
    held_at_commit: bool = False
    detail: list[dict[str, Any]] = field(default_factory=list)


def _serve(inbox: Any, results: Any, start: Any, commit: Any) -> None:
    """A worker's loop: one job per message ("compact" or "load"), until None."""
    from threading import BrokenBarrierError

    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table.update import AddSnapshotUpdate

    from mozart_etl.maintenance.run import compact_tenant
    from mozart_etl.maintenance.settings import MaintenanceSettings

    hold = {"armed": False, "held": False}
    real_commit = SqlCatalog.commit_table

    def commit_table(self: SqlCatalog, table: Any, requirements: Any, updates: Any):  # type: ignore[no-untyped-def]
        if hold["armed"] and any(isinstance(u, AddSnapshotUpdate) for u in updates):
            hold["armed"] = False  # PyIceberg's own retry is not held again
            commit.wait()
            hold["held"] = True
        return real_commit(self, table, requirements, updates)

    SqlCatalog.commit_table = commit_table  # type: ignore[method-assign]
    while (message := inbox.get()) is not None:
        job, folder, index, hold_commit = message
        hold.update(armed=hold_commit, held=False)
        try:
            tenant = history.tenant_at(Path(folder))
            start.wait()
            if job == "compact":
                done = compact_tenant(tenant, MaintenanceSettings())
                detail = [result.model_dump(mode="json") for result in done]
            else:
                day = history.days(index + 1)[index]
                history.load_day(open_catalog(tenant), tenant, index, day)
                detail = []
        except BrokenBarrierError:
            results.put((job, Outcome(ok=False, error="barrier broken")))
        except Exception as exc:  # the outcome is the test's to judge
            error = f"{type(exc).__name__}: {exc}"
            results.put((job, Outcome(False, error, hold["held"])))
        else:
            results.put((job, Outcome(True, "", hold["held"], detail)))


class Pair:
    """The compacting and the loading process, spawned once for all races."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.start = context.Barrier(2, timeout=BARRIER_SECONDS)
        self.commit = context.Barrier(2, timeout=BARRIER_SECONDS)
        self.inboxes = {job: context.Queue() for job in ("compact", "load")}
        self.results = context.Queue()
        self.workers = [
            context.Process(
                target=_serve,
                args=(inbox, self.results, self.start, self.commit),
                daemon=True,
            )
            for inbox in self.inboxes.values()
        ]
        for worker in self.workers:
            worker.start()

    def race(self, folder: Path, index: int, *, hold: bool) -> dict[str, Outcome]:
        for job, inbox in self.inboxes.items():
            inbox.put((job, str(folder), index, hold))
        outcomes: dict[str, Outcome] = {}
        while len(outcomes) < 2:
            try:
                job, outcome = self.results.get(timeout=2 * BARRIER_SECONDS + 60)
            except queue.Empty:
                alive = [worker.is_alive() for worker in self.workers]
                raise AssertionError(
                    f"a racer did not answer; alive: {alive}"
                ) from None
            outcomes[job] = outcome
        if self.commit.broken:
            self.commit.reset()
        return outcomes

    def close(self) -> None:
        for inbox in self.inboxes.values():
            inbox.put(None)
        for worker in self.workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    racers = Pair()
    yield racers
    racers.close()


def _content(catalog: Catalog, tenant: TenantConfig, name: str) -> Any:
    return history.raw_content(catalog, tenant, name).drop_columns(UNSTABLE)


def _data_files_on_disk(catalog: Catalog, tenant: TenantConfig, name: str) -> set:
    table = catalog.load_table((tenant.raw_namespace, name))
    data = Path(table.location().removeprefix("file://")) / "data"
    return {str(path) for path in data.rglob("*.parquet")}


def test_a_load_beside_compaction_loses_nothing(tmp_path: Path, pair: Pair) -> None:
    folder = history.write_tenant(tmp_path / "raced")
    tenant = history.tenant_at(folder)
    twin = history.tenant_at(history.write_tenant(tmp_path / "oracle"))
    catalog, oracle = open_catalog(tenant), open_catalog(twin)
    days = history.days(3 + 2 * RACES)

    def load(target: Catalog, config: TenantConfig, index: int) -> None:
        history.load_day(target, config, index, days[index])

    for index in range(3):  # a history with small files to compact
        load(catalog, tenant, index)
        load(oracle, twin, index)
    refused = {"compact": 0, "load": 0}
    compacted = rebased = 0
    for race in range(RACES):
        # An unraced day first: compaction always finds small files, so both
        # racers always reach a commit (a held race needs both there).
        setup, raced = 3 + 2 * race, 4 + 2 * race
        load(catalog, tenant, setup)
        hold = race % 2 == 0
        outcomes = pair.race(folder, raced, hold=hold)
        load_outcome, compaction = outcomes["load"], outcomes["compact"]
        assert compaction.ok, compaction.error
        if hold:
            assert load_outcome.held_at_commit or "LoadError" in load_outcome.error
        if not load_outcome.ok:
            assert "LoadError" in load_outcome.error, load_outcome.error
            refused["load"] += 1
            load(catalog, tenant, raced)  # Airflow's retry of the sync task
        retried = sum(c["attempts"] - 1 for c in compaction.detail)
        if hold and load_outcome.ok and not retried:
            # Both held at their commit, the compaction landed first and was
            # not refused: the load's append went on top of it.
            rebased += 1
        outcomes_by_table = {c["table"]: c for c in compaction.detail}
        refused["compact"] += retried
        compacted += sum(c["outcome"] == "compacted" for c in compaction.detail)
        assert set(outcomes_by_table) == set(TABLES)
        for index in (setup, raced):
            load(oracle, twin, index)
        for name in TABLES:
            raced_rows = _content(catalog, tenant, name)
            expected = _content(oracle, twin, name)
            assert raced_rows.num_rows == expected.num_rows, (race, name, outcomes)
            assert raced_rows.equals(expected), (race, name)
            table = catalog.load_table((tenant.raw_namespace, name))
            referenced = {p for p in referenced_files(table) if p.endswith(".parquet")}
            assert _data_files_on_disk(catalog, tenant, name) == referenced, (
                f"race {race}: a refused attempt left data files in {name}"
            )
    print(
        f"{RACES} races: refused {refused}, {rebased} load(s) on top of a "
        f"compaction, {compacted} table compactions"
    )
    # The races were real: a compaction lost, or a load landed on top of one.
    assert refused["compact"] + rebased >= 1
    # A compaction changes no row: a load that loses to one is never refused
    # (it would cost the sync task an Airflow retry).
    assert refused["load"] == 0
    assert compacted >= RACES
