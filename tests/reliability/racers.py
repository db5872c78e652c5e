"""Two long-lived processes that run one task each per race, released at the
same instant by a `multiprocessing.Barrier` (never by sleeps).

A race may also hold each attempt at its snapshot commit until both got
there (a second barrier, inside the child's `SqlCatalog.commit_table`): both
attempts then planned against the same snapshot and commit together, the
worst interleaving, forced instead of hoped for. Spawned once per test, so a
race costs the task's time, not a Python start.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from dataclasses import dataclass, field
from datetime import date
from typing import Any

BARRIER_SECONDS = 120.0


@dataclass(frozen=True)
class Attempt:
    """One load attempt: a task instance's inputs, as its XComs give them."""

    folder: str
    table: str
    day: date
    run_id: str
    extract: dict[str, Any]
    validate: dict[str, Any]


@dataclass
class Outcome:
    ok: bool
    error: str = ""
    """`<class>: <message>` of a failed attempt."""
    held_at_commit: bool = False
    """Whether the attempt reached the commit barrier (a held race)."""
    notes: list[str] = field(default_factory=list)


class Racers:
    """`count` worker processes; `race` gives each an attempt and waits."""

    def __init__(self, count: int = 2) -> None:
        context = multiprocessing.get_context("spawn")
        self.start = context.Barrier(count, timeout=BARRIER_SECONDS)
        self.commit = context.Barrier(count, timeout=BARRIER_SECONDS)
        self.inboxes = [context.Queue() for _ in range(count)]
        self.results = context.Queue()
        self.workers = [
            context.Process(
                target=_serve,
                args=(index, inbox, self.results, self.start, self.commit),
                daemon=True,
            )
            for index, inbox in enumerate(self.inboxes)
        ]
        for worker in self.workers:
            worker.start()

    def race(self, attempts: list[Attempt], *, hold_commit: bool) -> list[Outcome]:
        """Run the attempts at once (one per worker); their outcomes, in order."""
        assert len(attempts) == len(self.workers)
        for inbox, attempt in zip(self.inboxes, attempts, strict=True):
            inbox.put((attempt, hold_commit))
        outcomes: dict[int, Outcome] = {}
        while len(outcomes) < len(attempts):
            try:
                index, outcome = self.results.get(timeout=2 * BARRIER_SECONDS + 60)
            except queue.Empty:
                raise AssertionError(
                    f"a racer did not answer; alive: "
                    f"{[worker.is_alive() for worker in self.workers]}"
                ) from None
            outcomes[index] = outcome
        if self.commit.broken:
            self.commit.reset()
        return [outcomes[index] for index in range(len(attempts))]

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for worker in self.workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()


def _serve(
    index: int,
    inbox: Any,
    results: Any,
    start: Any,
    commit: Any,
) -> None:
    """A worker's loop: one attempt per message, until None."""
    from threading import BrokenBarrierError

    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table.update import AddSnapshotUpdate

    from mozart_etl.factory import tasks
    from tests.reliability.pipeline import task_context

    hold = {"armed": False, "held": False}
    real_commit = SqlCatalog.commit_table

    def commit_table(self: SqlCatalog, table: Any, requirements: Any, updates: Any):  # type: ignore[no-untyped-def]
        adds_snapshot = any(isinstance(u, AddSnapshotUpdate) for u in updates)
        if hold["armed"] and adds_snapshot:
            hold["armed"] = False  # PyIceberg's own retry is not held again
            commit.wait()
            hold["held"] = True
        return real_commit(self, table, requirements, updates)

    SqlCatalog.commit_table = commit_table  # type: ignore[method-assign]
    while (message := inbox.get()) is not None:
        attempt, hold_commit = message
        hold.update(armed=hold_commit, held=False)
        try:
            start.wait()
            with task_context(attempt.run_id, attempt.day):
                tasks.run_load(
                    attempt.folder, attempt.table, attempt.extract, attempt.validate
                )
        except BrokenBarrierError:
            results.put((index, Outcome(ok=False, error="barrier broken")))
        except Exception as exc:  # the outcome is the test's to judge
            results.put(
                (
                    index,
                    Outcome(
                        ok=False,
                        error=f"{type(exc).__name__}: {exc}",
                        held_at_commit=hold["held"],
                        notes=traceback.format_exception(exc)[-3:],
                    ),
                )
            )
        else:
            results.put((index, Outcome(ok=True, held_at_commit=hold["held"])))
