"""OpenLineage for the table stages: inputs and outputs of what each task did.

Airflow's openlineage provider asks an operator for
`get_openlineage_facets_on_complete` after it ran; a plain PythonOperator has
none, so the table stages run as `StageOperator`, which answers from the task's
own result (the extract's manifest, the validation report, the load result).
The dbt tasks' lineage comes from Cosmos (it implements the same method).

Off unless a transport is configured: set `AIRFLOW__OPENLINEAGE__TRANSPORT`
(e.g. `{"type": "http", "url": "http://marquez:5000"}`) — one setting; without
it the provider stays disabled and nothing here runs.

Dataset names follow OpenLineage's naming: a server source is
`<type>://<host>:<port>` / `<database>.<schema>.<table>`, SQLite
`sqlite://<file>` / `<table>`, the lake `file` / `<folder>` (S3:
`s3://<bucket>` / `<key>`), a raw table `iceberg://<catalog>` /
`<namespace>.<table>` (the Asset URI's parts).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.python import PythonOperator

from mozart_etl.config.constants import SourceType
from mozart_etl.config.loader import load_tenant
from mozart_etl.factory.heap import freeze_heap, unfreeze_heap
from mozart_etl.factory.tasks import release_arrow_memory

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import JobFacet, RunFacet

    from mozart_etl.config.models import TableConfig, TenantConfig


class StageOperator(PythonOperator):
    """A table task (`stage`: sync, or in the `stages` shape extract, validate,
    transform or load)."""

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self._stage_result: Any = None

    def execute(self, context: Any) -> Any:
        freeze_heap()
        try:
            self._stage_result = super().execute(context)
        finally:
            unfreeze_heap()
            release_arrow_memory()
        return self._stage_result

    def get_openlineage_facets_on_complete(
        self, task_instance: Any
    ) -> OperatorLineage[Dataset, RunFacet | JobFacet]:
        from airflow.providers.openlineage.extractors import OperatorLineage

        kwargs = self.op_kwargs
        tenant = load_tenant(Path(kwargs["tenant_folder"]))
        table = tenant.table(kwargs["table_name"])
        inputs, outputs = stage_datasets(
            self.stage, tenant, table, kwargs, self._stage_result or {}
        )
        return OperatorLineage(inputs=inputs, outputs=outputs)


def stage_datasets(
    stage: str,
    tenant: TenantConfig,
    table: TableConfig,
    kwargs: Mapping[str, Any],
    result: dict[str, Any],
) -> tuple[list[Dataset], list[Dataset]]:
    """(inputs, outputs) of one stage, from its arguments and result (XCom dicts)."""
    if stage == "sync":  # the lake folders in between are the sync's own
        return [source_dataset(tenant, table)], [raw_dataset(tenant, table.name)]
    if stage == "extract":
        return [source_dataset(tenant, table)], [lake_dataset(tenant, result["folder"])]
    if stage == "validate":
        # It writes only the quarantine: the accepted rows stay the extract's.
        extract = lake_dataset(tenant, kwargs["manifest"]["folder"])
        return [extract], [lake_dataset(tenant, result["quarantine_path"])]
    if stage == "transform":
        accepted = lake_dataset(tenant, kwargs["report"]["accepted_path"])
        return [accepted], [lake_dataset(tenant, result["folder"])]
    if stage == "load":
        transformed = kwargs.get("transformed")
        accepted = kwargs["report"]["accepted_path"]
        read = transformed["folder"] if transformed else accepted
        return [lake_dataset(tenant, read)], [raw_dataset(tenant, table.name)]
    raise ValueError(f"unknown stage {stage!r}")


def _dataset(namespace: str, name: str) -> Dataset:
    from openlineage.client.event_v2 import Dataset

    return Dataset(namespace=namespace, name=name)


def source_dataset(tenant: TenantConfig, table: TableConfig) -> Dataset:
    source = tenant.source
    ref = table.source
    relation = ref.table or f"query:{table.name}"
    if source.type == SourceType.SQLITE:
        return _dataset(f"sqlite://{source.database}", relation)
    where = f"{source.host}:{source.port}" if source.host else source.conn_id
    parts = [source.database, ref.schema_, relation]
    return _dataset(
        f"{source.type}://{where}", ".".join(p for p in parts if p is not None)
    )


def lake_dataset(tenant: TenantConfig, path: str) -> Dataset:
    root = tenant.storage.lake_root
    if root.startswith("s3://"):
        bucket, _, key = path.partition("/")
        return _dataset(f"s3://{bucket}", key)
    return _dataset("file", path)


def raw_dataset(tenant: TenantConfig, table_name: str) -> Dataset:
    return _dataset(
        f"iceberg://{tenant.iceberg.catalog.name}",
        f"{tenant.raw_namespace}.{table_name}",
    )
