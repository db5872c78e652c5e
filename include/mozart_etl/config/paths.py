"""Where the project and its tenants are: the repository root and `tenants/`.

Apart from the loader so that modules the config schema imports (the column
mapping reads `dbt/product_standard.yml` under the root) can find the root
without importing the loader, which imports the schema: no import circle.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root: `MOZART_PROJECT_ROOT`, else two levels above the package."""
    configured = os.environ.get("MOZART_PROJECT_ROOT")
    if configured:
        return Path(configured).resolve()
    return Path(__file__).resolve().parents[3]


def tenants_dir() -> Path:
    """`MOZART_TENANTS_DIR`, else `tenants/` under the project root."""
    configured = os.environ.get("MOZART_TENANTS_DIR")
    return Path(configured).resolve() if configured else project_root() / "tenants"


__all__ = ["project_root", "tenants_dir"]
