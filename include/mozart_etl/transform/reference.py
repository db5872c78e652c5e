"""`transform: <module>:<function>` → the file in the tenant's folder (no import)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import ConfigError


@dataclass(frozen=True)
class TransformRef:
    module: str
    function: str

    @classmethod
    def of(cls, table: TableConfig) -> TransformRef:
        assert table.transform is not None
        module, function = table.transform.split(":")
        return cls(module=module, function=function)

    def path(self, folder: Path) -> Path:
        return folder.joinpath(*self.module.split(".")).with_suffix(".py")

    def __str__(self) -> str:
        return f"{self.module}:{self.function}"


def check_transform_files(folder: Path, tenant: TenantConfig) -> None:
    """Every declared transform's module file exists (its function is checked when
    the task imports it: importing here would run tenant code at DAG parse)."""
    for table in tenant.tables:
        if table.transform is None:
            continue
        path = TransformRef.of(table).path(folder)
        if not path.is_file():
            raise ConfigError(
                f"{folder / 'tenant.yaml'}: tables[{table.name}].transform: "
                f"{table.transform!r} needs the file {path}, which does not exist",
                tenant=tenant.tenant_id,
                table=table.name,
            )
