"""Render a tenant's models for a target without a warehouse (`mozart render`).

`dbt compile --no-introspect` needs no connection, so the Trino SQL of every
model and test can be produced (and parsed) on a machine without Trino.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.models import TenantConfig
from mozart_etl.dbt.runner import invoke_dbt, placeholder_vars

log = logging.getLogger(__name__)

# Settings for the trino profile when the tenant has none: rendering never
# connects (port 1 would refuse at once if something tried).
OFFLINE_TRINO = {"MOZART_TRINO_HOST": "127.0.0.1", "MOZART_TRINO_PORT": "1"}


def render_models(
    tenant_folder: Path, tenant: TenantConfig, target: DbtTarget, out_dir: Path
) -> dict[str, str]:
    """Compiled SQL of every model and data test, by path relative to `out_dir`."""
    env = {"MOZART_DBT_TARGET": str(target)}
    if target == DbtTarget.TRINO and tenant.dbt.trino is None:
        env.update(OFFLINE_TRINO)
    args = [
        "compile",
        "--quiet",
        "--target",
        str(target),
        "--no-introspect",
        "--no-populate-cache",
        "--target-path",
        str(out_dir),
        "--vars",
        placeholder_vars(tenant),
    ]
    invoke_dbt(tenant_folder, tenant, args, env=env)
    compiled = out_dir / "compiled"
    rendered = {
        str(path.relative_to(compiled)): path.read_text(encoding="utf-8")
        for path in sorted(compiled.rglob("*.sql"))
    }
    log.info(
        "tenant %s: rendered %d statements for %s",
        tenant.tenant_id,
        len(rendered),
        target,
    )
    return rendered
