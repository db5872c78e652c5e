"""Cosmos task groups for a tenant's dbt staging and mart models.

Each layer is one `dbt build` task by default (factory/dbt_layer.py); the
`stages` DAG shape renders it with Cosmos from the prebuilt manifest (no `dbt
ls` at parse time), a task per model and per model's tests. Either way dbt
runs in-process through dbt's runner.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

from cosmos import (
    DbtTaskGroup,
    ExecutionConfig,
    ProfileConfig,
    ProjectConfig,
    RenderConfig,
)
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.environ import restore_environ, saved_environ
from mozart_etl.core.errors import ConfigError
from mozart_etl.core.run_vars import RunVars
from mozart_etl.dbt.duckdb_env import forget_dbt_duckdb_environment
from mozart_etl.dbt.failures import DbtRetryPolicy
from mozart_etl.dbt.flag_source import name_flag_sources_cheaply
from mozart_etl.dbt.profile import dbt_env, profile_digest
from mozart_etl.dbt.project import (
    PROFILE_NAME,
    manifest_path,
    profiles_dir,
    tenant_dbt_dir,
)
from mozart_etl.factory.asset_events import record_mart_event
from mozart_etl.factory.dbt_layer import DbtLayerOperator
from mozart_etl.factory.heap import freeze_heap, unfreeze_heap
from mozart_etl.factory.trino_profile import TrinoConnectionProfileMapping

# The dbt installed beside this interpreter, whatever the worker's PATH says.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


def run_vars(tenant: TenantConfig) -> dict[str, object]:
    """dbt vars: the tenant's own, the same on every run. The run's values go
    through the environment (`RunVars.dbt_env_templates`): dbt re-parses the
    whole project when its vars change, seconds per dbt task on every run."""
    return dict(tenant.dbt_vars())


def execution_mode() -> ExecutionMode:
    """LOCAL with dbt's in-process runner (chosen by measurement: see
    docs/performance.md); `MOZART_COSMOS_EXECUTION_MODE=watcher` switches to
    Cosmos's watcher (one `dbt build` per group, sensors per model)."""
    return ExecutionMode(os.environ.get("MOZART_COSMOS_EXECUTION_MODE", "local"))


def cosmos_test_behavior() -> TestBehavior:
    """A model's tests as their own task after it (AFTER_EACH, the default);
    `MOZART_COSMOS_TEST_BEHAVIOR=build` runs them in the model's task (`dbt
    build`: half the tasks; compared in bench/e2e.py)."""
    return TestBehavior(os.environ.get("MOZART_COSMOS_TEST_BEHAVIOR", "after_each"))


def dbt_global_flags() -> list[str]:
    """`--no-write-json` unless OpenLineage is on (its processor reads the JSON
    artifacts) or MOZART_DBT_WRITE_JSON=1: otherwise every dbt task rewrites
    manifest.json, ~40 % of a small task's dbt time (docs/performance.md)."""
    if os.environ.get("MOZART_DBT_WRITE_JSON") == "1" or _openlineage_on():
        return []
    return ["--no-write-json"]


def _openlineage_on() -> bool:
    from airflow.configuration import conf

    if conf.getboolean("openlineage", "disabled", fallback=False):
        return False
    return any(
        (conf.get("openlineage", option, fallback="") or "").strip() not in ("", "{}")
        for option in ("transport", "config_path")
    )


def _load_mode() -> LoadMode:
    """The prebuilt manifest; `MOZART_COSMOS_LOAD_MODE` (e.g. `dbt_ls`) exists to
    compare alternatives in bench/parse.py, not for production."""
    return LoadMode(os.environ.get("MOZART_COSMOS_LOAD_MODE", "dbt_manifest"))


def profile_config(tenant: TenantConfig) -> ProfileConfig:
    """The shared profiles.yml, or for Trino with `conn_id` an Airflow connection
    (host, port, user and whichever auth it carries: factory/trino_profile.py).

    Cosmos's Trino mappings need `database` and `schema` in profile_args, and
    `http_scheme` explicitly (the connection's extra `protocol` wins).
    """
    trino = tenant.dbt.trino
    if tenant.dbt.target == DbtTarget.TRINO and trino is not None and trino.conn_id:
        return ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name="trino",
            profile_mapping=TrinoConnectionProfileMapping(
                conn_id=trino.conn_id,
                profile_args={
                    "database": trino.catalog,
                    "schema": tenant.namespace,
                    "http_scheme": trino.http_scheme,
                },
            ),
        )
    return ProfileConfig(
        profile_name=PROFILE_NAME,
        target_name=str(tenant.dbt.target),
        profiles_yml_filepath=profiles_dir() / "profiles.yml",
    )


def before_dbt_task(duckdb: bool, context: Any) -> None:
    """A dbt task's pre-execute hook: freeze the heap for the garbage collector
    (factory/heap.py).

    Cosmos also runs a full `gc.collect()` after every in-process dbt command
    (to release the adapters' semaphores, astronomer-cosmos#2334). Over a
    worker's whole heap that took 0.43 s per task, a third of a demo run under
    `dag.test`; with what existed before the command frozen, it walks only what
    the command allocated. `after_dbt_task` unfreezes.

    And dbt's behaviour flags get their source named cheaply (dbt/flag_source.py).
    """
    freeze_heap()
    name_flag_sources_cheaply()
    if duckdb:
        forget_dbt_duckdb_environment(context)


def after_dbt_task(
    tenant_folder: str,
    saved: dict[str, str | None],
    context: Any,
    result: Any = None,
) -> None:
    """A dbt task's post-execute hook: record the mart's Asset event, put back
    the environment variables Cosmos leaves behind, unfreeze the heap.

    With the OpenLineage provider installed, Cosmos copies the task's `env`
    into os.environ for its artifact processor and never restores it; a
    process that runs several tenants' tasks (`dag.test`, a reused worker)
    would then resolve the next tenant's `${VAR:default}` with this one's.
    """
    try:
        record_mart_event(tenant_folder, context, result)
    finally:
        unfreeze_heap()
        restore_environ(saved)


def _operator_args(tenant_folder: Path, tenant: TenantConfig) -> dict[str, object]:
    """What every dbt task of the tenant runs with, in either DAG shape."""
    environment = {**dbt_env(tenant), **RunVars.dbt_env_templates()}
    operator_args: dict[str, object] = {
        "vars": run_vars(tenant),
        "env": environment,
        "install_deps": False,
        "dbt_cmd_global_flags": dbt_global_flags(),
        # A compilation/binder error or a failed dbt test fails at once: the
        # retries would give dbt's same answer minutes later (dbt/failures.py).
        "retry_policy": DbtRetryPolicy(),
    }
    if tenant.dbt.pool:
        operator_args["pool"] = tenant.dbt.pool
    operator_args["pre_execute"] = partial(
        before_dbt_task, tenant.dbt.target == DbtTarget.DUCKDB
    )
    # Mart tasks get Asset outlets (dag_factory); this attaches the rows.
    saved = saved_environ(environment)
    operator_args["post_execute"] = partial(after_dbt_task, str(tenant_folder), saved)
    return operator_args


def _checked_manifest(tenant_folder: Path, tenant: TenantConfig, layer: str) -> Path:
    manifest = manifest_path(tenant_folder, layer)
    if not manifest.is_file():
        raise ConfigError(
            f"dbt manifest {manifest} is missing: run `make manifests` "
            "(or `mozart manifests`) after changing the tenant's dbt project",
            tenant=tenant.tenant_id,
        )
    return manifest


def layer_models(tenant_folder: Path, tenant: TenantConfig, layer: str) -> list[str]:
    """The model names of one layer, from its trimmed manifest (a ConfigError
    saying how to build it when it is missing)."""
    manifest = _checked_manifest(tenant_folder, tenant, layer)
    nodes = json.loads(manifest.read_text())["nodes"]
    return sorted(n["name"] for n in nodes.values() if n["resource_type"] == "model")


def dbt_layer_task(
    tenant_folder: Path, tenant: TenantConfig, layer: str
) -> DbtLayerOperator:
    """The layer as one `dbt build` task (the default DAG shape)."""
    _checked_manifest(tenant_folder, tenant, layer)
    return DbtLayerOperator(
        task_id=f"dbt_{layer}",
        layer=layer,
        tenant_folder=str(tenant_folder),
        # One partial-parse cache for both layers: the same project, profile
        # and vars, so the marts task reuses what the staging task parsed;
        # one per resolved profile (dbt's state is only valid under it).
        cache_id=f"{tenant.tenant_id}__dbt__{profile_digest(tenant)}",
        project_dir=str(tenant_dbt_dir(tenant_folder)),
        profile_config=profile_config(tenant),
        invocation_mode=InvocationMode.DBT_RUNNER,
        dbt_executable_path=DBT_EXECUTABLE,
        emit_datasets=False,
        **_operator_args(tenant_folder, tenant),
    )


def dbt_task_group(
    tenant_folder: Path, tenant: TenantConfig, layer: str
) -> DbtTaskGroup:
    """The layer as Cosmos renders it: a task per model and per model's tests
    (the `stages` DAG shape)."""
    manifest = _checked_manifest(tenant_folder, tenant, layer)
    load_mode = _load_mode()
    return DbtTaskGroup(
        group_id=f"dbt_{layer}",
        project_config=ProjectConfig(
            dbt_project_path=tenant_dbt_dir(tenant_folder),
            manifest_path=manifest,
            install_dbt_deps=False,
        ),
        profile_config=profile_config(tenant),
        execution_config=ExecutionConfig(
            execution_mode=execution_mode(),
            invocation_mode=InvocationMode.DBT_RUNNER,
            dbt_executable_path=DBT_EXECUTABLE,
        ),
        render_config=RenderConfig(
            load_method=load_mode,
            # A layer's manifest holds only that layer: nothing to select.
            select=[]
            if load_mode == LoadMode.DBT_MANIFEST
            else [f"path:models/{layer}"],
            test_behavior=cosmos_test_behavior(),
            # Not operator_args' `emit_datasets`: Cosmos overrides that with this.
            # Marts are Assets with stable URIs (factory/assets.py); Cosmos's own
            # would add path-based duplicates through an AssetAlias per task.
            emit_datasets=False,
            # A test reading two models (relationships) runs after both.
            should_detach_multiple_parents_tests=True,
        ),
        operator_args=_operator_args(tenant_folder, tenant),
    )
