"""Where a run's next attempt resumes: markers an attempt leaves in the lake.

A table's sync runs as one task (extract → validate → load → reconcile). If
an attempt completed its extract and then failed in a way a retry can fix (a
load that lost a commit race, a source that dropped the connection during the
reconcile, a killed worker), the retry must not read the source again: the
complete extract is in the lake and its manifest says what it holds. So the
sync remembers the manifest as soon as the extract completes, the retry
resumes from it, and the marker is forgotten when the attempt succeeds or
fails for good (a terminal error is fixed by a person who then clears the
task: that run reads the source anew).

A dbt layer's build remembers which of its nodes did not succeed, so that its
retry builds those (and what depends on them) instead of the whole layer;
a sync of the same run that appends to raw forgets that (the other models
would be stale).

Layout: `<lake_root>/<prefix>/_runs/<run id, URL-quoted>/<name>.json`. The
markers are a few hundred bytes; `mozart sweep` leaves the folder alone.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import pyarrow.fs as pafs

from mozart_etl.core.lake import ExtractManifest, Lake

log = logging.getLogger(__name__)

RUNS_FOLDER = "_runs"


class RunMarkers:
    """The markers of one run of one tenant."""

    def __init__(self, lake: Lake, run_id: str) -> None:
        self.lake = lake
        self.run_id = run_id
        self.folder = f"{lake.root}/{RUNS_FOLDER}/{quote(run_id, safe='')}"

    def _path(self, name: str) -> str:
        return f"{self.folder}/{name}.json"

    def _read(self, name: str) -> dict[str, Any] | None:
        path = self._path(name)
        if self.lake.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        return self.lake.read_json(path)

    def _write(self, name: str, payload: str) -> None:
        self.lake.make_dirs(self.folder)
        self.lake.write_json(self._path(name), payload)

    def forget(self, name: str) -> None:
        path = self._path(name)
        if self.lake.fs.get_file_info(path).type == pafs.FileType.File:
            self.lake.fs.delete_file(path)

    # -- a table's extract ---------------------------------------------------

    @staticmethod
    def extract_name(table: str) -> str:
        return f"{table}.extract"

    def remember_extract(self, manifest: ExtractManifest) -> None:
        self._write(self.extract_name(manifest.table), manifest.model_dump_json())

    def complete_extract(self, table: str) -> ExtractManifest | None:
        """The extract an earlier attempt of this run completed, if it left one."""
        payload = self._read(self.extract_name(table))
        return None if payload is None else ExtractManifest.model_validate(payload)

    # -- a dbt layer's failed nodes --------------------------------------------

    @staticmethod
    def dbt_name(layer: str) -> str:
        return f"dbt_{layer}.unfinished"

    def remember_unfinished(self, layer: str, nodes: list[str]) -> None:
        self._write(self.dbt_name(layer), json.dumps({"nodes": sorted(nodes)}))

    def raw_changed(self) -> None:
        """A sync of this run appended to raw: every model must see it, so no
        later dbt attempt of the run may build only what an earlier one left."""
        selector = pafs.FileSelector(self.folder, allow_not_found=True)
        for info in self.lake.fs.get_file_info(selector):
            if info.base_name.startswith("dbt_") and info.base_name.endswith(".json"):
                self.lake.fs.delete_file(info.path)

    def unfinished(self, layer: str) -> list[str] | None:
        """The nodes an earlier build of this layer in this run left unbuilt."""
        payload = self._read(self.dbt_name(layer))
        return None if payload is None else list(payload["nodes"])
