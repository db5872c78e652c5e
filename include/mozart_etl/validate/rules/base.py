"""A compiled rule: a SQL predicate that is TRUE for each row that breaks it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import Severity


class Check(BaseModel):
    """One rule, ready to run: `sql` uses `?` placeholders bound to `params`."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    severity: Severity
    sql: str
    params: list[str | int | float | bool] = []
    max_failures: int | None = None
    max_fraction: float | None = None

    def tolerated(self, failed: int, rows: int) -> bool:
        """Within tolerance; without one, an error rule tolerates no failure."""
        if self.max_failures is None and self.max_fraction is None:
            return failed == 0
        if self.max_failures is not None and failed > self.max_failures:
            return False
        return not (
            self.max_fraction is not None and rows and failed / rows > self.max_fraction
        )


def quote(identifier: str) -> str:
    """DuckDB identifier quoting; config validation already rejects `"`."""
    return '"' + identifier.replace('"', '""') + '"'
