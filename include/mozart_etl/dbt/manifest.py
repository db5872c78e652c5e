"""Build each tenant's dbt manifest (`dbt deps` + `dbt parse`) ahead of parse time.

Cosmos renders task groups from this file (LoadMode.DBT_MANIFEST), so the
scheduler never runs `dbt ls` while parsing DAGs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from dbt.cli.main import dbtRunner

from mozart_etl.config.models import TenantConfig
from mozart_etl.dbt.profile import dbt_env
from mozart_etl.dbt.project import manifest_path, profiles_dir, tenant_dbt_dir
from mozart_etl.errors import ConfigError

log = logging.getLogger(__name__)

# Models read run-time vars; parsing needs placeholders (never used to build).
PARSE_VARS = (
    '{"production_day": "1970-01-01", "window_start": "1970-01-01T00:00:00+00:00",'
    ' "window_end": "1970-01-02T00:00:00+00:00"}'
)


def build_manifest(tenant_folder: Path, tenant: TenantConfig) -> Path:
    project_dir = tenant_dbt_dir(tenant_folder)
    env = dbt_env(tenant)
    common = ["--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir())]
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        for command in (["deps"], ["parse", "--vars", PARSE_VARS]):
            result = dbtRunner().invoke([*command, *common, "--quiet"])
            if not result.success:
                raise ConfigError(
                    f"`dbt {command[0]}` failed in {project_dir}: {result.exception}",
                    tenant=tenant.tenant_id,
                )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    path = manifest_path(tenant_folder)
    log.info("tenant %s: dbt manifest at %s", tenant.tenant_id, path)
    return path
