"""Timing and peak-memory helpers shared by the benchmarks."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import queue as queues
import resource
import time
import traceback
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bench")

_imported: list[float] = []
_task_started: list[float] = []


def imports_done() -> None:
    """Called by a contender once its libraries are imported: the child then
    also reports the seconds after that point (`work_seconds`)."""
    _imported.append(time.perf_counter())


def task_starts() -> None:
    """Called by a contender once it has imported what an Airflow task process has
    loaded before the task's callable runs (it parsed the DAG file): the child
    then also reports the seconds from that point (`task_seconds`)."""
    _task_started.append(time.perf_counter())


def _child(fn: Callable[..., Any], args: tuple, queue: mp.Queue) -> None:
    started = time.perf_counter()
    try:
        result = fn(*args)
    except BaseException:
        # The parent waits on the queue: tell it, then fail as usual.
        queue.put({"error": traceback.format_exc()})
        raise
    finished = time.perf_counter()
    peak_kib = _peak_rss_kib()
    queue.put(
        {
            "seconds": finished - started,
            "work_seconds": finished - (_imported[-1] if _imported else started),
            "task_seconds": finished
            - (_task_started[-1] if _task_started else started),
            "peak_rss_mb": peak_kib / 1024,
            "result": result,
        }
    )


def _peak_rss_kib() -> int:
    """This process's own peak RSS. Not `getrusage`: Linux carries ru_maxrss
    over fork and exec, so a spawned child reported the parent's peak when that
    was higher (a 0.1 s DuckDB count showed the 443 MB of the parent that had
    just built a 3M-row extract)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Run `fn(*args)` in a fresh process: wall seconds and that process's peak RSS.

    A fresh (spawned) process per measurement keeps one contender's memory from
    inflating the next one's peak.
    """
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(fn, args, queue))
    process.start()
    outcome = _outcome(process, queue)
    process.join()
    if "error" in outcome:
        raise RuntimeError(f"benchmark child {fn.__name__} failed:\n{outcome['error']}")
    if process.exitcode != 0:
        raise RuntimeError(
            f"benchmark child for {fn.__name__} exited {process.exitcode}"
        )
    return outcome


def _outcome(process: Any, queue: mp.Queue) -> dict[str, Any]:
    """The child's message; a child killed by a signal never sends one."""
    while True:
        try:
            return queue.get(timeout=1)
        except queues.Empty:
            if process.is_alive():
                continue
            try:  # a message sent just before the exit may still be in the pipe
                return queue.get(timeout=1)
            except queues.Empty:
                return {"error": f"no result: the child exited {process.exitcode}"}


def best_of(repeats: int, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """The fastest of `repeats` runs (least disturbed by the machine's noise)."""
    runs = [measure(fn, *args) for _ in range(repeats)]
    best = fastest(runs)
    best["all_seconds"] = [round(run["seconds"], 3) for run in runs]
    return best


def fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run: the least disturbed by the machine's noise."""
    return min(runs, key=lambda run: run["seconds"])


def report(name: str, rows: list[dict[str, Any]]) -> None:
    """Log a result table and one JSON line per row (for docs/performance.md)."""
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    log.info("== %s ==", name)
    log.info("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        log.info("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))
    for row in rows:
        log.info("json %s", json.dumps({"bench": name, **row}, default=str))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
