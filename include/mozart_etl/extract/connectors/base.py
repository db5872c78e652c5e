"""One interface for every source database; dialects differ only in small ways."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date, datetime
from typing import ClassVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, SecretStr

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import SourceConfig


class Credentials(BaseModel):
    """Resolved connection settings (from tenant.yaml, or an Airflow connection)."""

    model_config = ConfigDict(frozen=True)

    host: str | None = None
    port: int | None = None
    database: str
    user: str | None = None
    password: SecretStr | None = None
    options: dict[str, str | int | float | bool] = {}

    @classmethod
    def from_source(cls, source: SourceConfig) -> Credentials:
        return cls(
            host=source.host,
            port=source.port,
            database=source.database,
            user=source.user,
            password=source.password,
            options=source.options,
        )


class Connector(ABC):
    """Opens a streaming SQLAlchemy engine and adapts bound values to the dialect."""

    source_type: ClassVar[SourceType]
    driver: ClassVar[str]

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    @abstractmethod
    def url(self) -> sa.URL:
        """The SQLAlchemy URL; never logged (it holds the password)."""

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url(), poolclass=sa.NullPool)

    def bind_instant(self, value: datetime | date) -> object:
        """How a window bound is compared with the cursor column in this database:
        an aware UTC instant, a naive UTC wall time or a date (`cursor_bound`)."""
        return value

    def describe(self) -> str:
        """Where we read from, without secrets (for logs and errors)."""
        c = self.credentials
        where = f"{c.host}:{c.port}" if c.host else "local"
        return f"{self.source_type} {where}/{c.database}"

    def _server_url(self) -> sa.URL:
        c = self.credentials
        return sa.URL.create(
            self.driver,
            username=c.user,
            password=c.password.get_secret_value() if c.password else None,
            host=c.host,
            port=c.port,
            database=c.database,
            query={key: str(value) for key, value in c.options.items()},
        )
