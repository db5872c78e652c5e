"""One task per dbt layer: `dbt build` of the layer's models and tests in one
dbt process, each node's outcome in the task's log and XCom.

Why not a task per model (Cosmos LOCAL) or Cosmos's WATCHER: on the machines
we run, an Airflow task start costs seconds (a process, the imports, the DAG
parse), more than most of our models take; the demo's 37 dbt tasks were most
of its live run (docs/performance.md). WATCHER keeps a sensor task per model,
so the same starts, and its retries were still being reworked upstream
(Cosmos's "watcher retry history"). One build per layer keeps dbt's own
threading and ordering, and this module gives back what the per-model tasks
showed:

- a line per node as it finishes (status, seconds, message) and the whole
  table in XCom (`models`);
- a retry (or a clear after a failure) builds only the nodes that did not
  succeed — errored, failed, skipped — with the in-layer parents of a failed
  test, remembered in the lake by the failed attempt (pipeline/resume.py);
- Asset events per mart (the marts task's outlets, dag_factory).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmos.operators.local import DbtBuildLocalOperator

if TYPE_CHECKING:
    from mozart_etl.pipeline.resume import RunMarkers

log = logging.getLogger(__name__)

SUCCEEDED = {"success", "pass", "warn"}
"""dbt run statuses of a node that needs no rebuild (a warning passes)."""


def _cache_dir(cache_id: str) -> Path | None:
    from cosmos import settings

    return Path(settings.cache_dir) / cache_id if settings.enable_cache else None


class NodeOutcomes:
    """dbt's NodeFinished events of one build (a dbtRunner callback)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}

    def __call__(self, event: Any) -> None:
        if event.info.name != "NodeFinished":
            return
        node, result = event.data.node_info, event.data.run_result
        outcome = {
            "name": node.node_name,
            "resource_type": node.resource_type,
            "status": result.status,
            "seconds": round(result.execution_time, 3),
            "message": result.message,
        }
        self.nodes[node.unique_id] = outcome
        log.info(
            "dbt %s %s: %s in %.2f s%s",
            outcome["resource_type"],
            outcome["name"],
            outcome["status"],
            outcome["seconds"],
            f" ({result.message})" if result.message else "",
        )

    def unfinished(self) -> list[str]:
        return [uid for uid, o in self.nodes.items() if o["status"] not in SUCCEEDED]


class DbtLayerOperator(DbtBuildLocalOperator):
    """`dbt build` of one layer (`path:models/<layer>`); tests reading an
    earlier layer's model too run here (`--indirect-selection buildable`),
    as the layer manifests split them."""

    _run_markers: RunMarkers | None  # set by `_markers`, reset by each try

    def __init__(
        self, *, layer: str, tenant_folder: str, cache_id: str, **kwargs: Any
    ) -> None:
        self.layer = layer
        self.tenant_folder = tenant_folder
        self.outcomes = NodeOutcomes()
        super().__init__(
            select=[f"path:models/{layer}"],
            indirect_selection="buildable",
            dbt_runner_callbacks=[self.outcomes],
            callback=self._after_build,
            # dbt's partial-parse state, kept between runs in Cosmos's cache
            # (a DbtTaskGroup gets one; a lone operator only when given): with
            # the same vars on every run, dbt parses only what changed.
            cache_dir=_cache_dir(cache_id),
            **kwargs,
        )

    def _markers(self, context: Any) -> RunMarkers:
        """The run's markers, opened once per try (the build's start reads
        them, its callback writes them)."""
        markers = getattr(self, "_run_markers", None)
        if markers is not None:
            return markers
        from mozart_etl.config.loader import load_tenant
        from mozart_etl.core.lake import Lake
        from mozart_etl.pipeline.resume import RunMarkers

        tenant = load_tenant(Path(self.tenant_folder))
        self._run_markers = RunMarkers(Lake(tenant), str(context["run_id"]))
        return self._run_markers

    def execute(self, context: Any, **kwargs: Any) -> None:
        if self.cache_dir is not None:
            (self.cache_dir / "target").mkdir(parents=True, exist_ok=True)
        # One operator object may run several tries (`dag.test`, a reused
        # worker): each reports only its own nodes.
        self.outcomes.nodes.clear()
        self._run_markers = None
        self.select = [f"path:models/{self.layer}"]
        unfinished = self._markers(context).unfinished(self.layer)
        if unfinished:
            self.select = self._retry_selection(unfinished)
            log.info(
                "dbt %s: an earlier attempt of this run left %d node(s) unbuilt; "
                "building only those: %s",
                self.layer,
                len(unfinished),
                " ".join(self.select),
            )
        super().execute(context, **kwargs)

    def _retry_selection(self, unique_ids: list[str]) -> list[str]:
        """Each unbuilt node by name; a test with its parents in this layer (a
        failed test may have failed on stale data the rebuild fixes)."""
        selection = []
        for unique_id in unique_ids:
            kind, *_, name = unique_id.split(".")
            if kind == "test":
                selection.append(f"1+{name},path:models/{self.layer}")
            else:
                selection.append(name)
        return selection

    def _after_build(self, project_dir: str, context: Any = None, **_: Any) -> None:
        """Cosmos's callback, after dbt and before its outcome raises: the
        node table to XCom, and the unbuilt nodes for the next attempt."""
        outcomes = self.outcomes.nodes
        counts: dict[str, int] = {}
        for outcome in outcomes.values():
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        log.info(
            "dbt %s: %d node(s) finished: %s",
            self.layer,
            len(outcomes),
            ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none",
        )
        if context is not None:
            context["ti"].xcom_push(key="models", value=list(outcomes.values()))
        markers = self._markers(context)
        unfinished = self.outcomes.unfinished()
        if unfinished:
            markers.remember_unfinished(self.layer, unfinished)
        else:
            markers.forget(markers.dbt_name(self.layer))
