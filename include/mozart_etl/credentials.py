"""Resolved connection settings, shared by the source connectors and publish.

Settings come from tenant.yaml (`source`, `publish.target`) and, where a
`conn_id` is given, from that Airflow connection, whose values win. The
password is a SecretStr: never in a repr, a log line or an error.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, SecretStr


class ConnectionSettings(Protocol):
    """What tenant.yaml's `source` and `publish.target` blocks have in common."""

    host: str | None
    port: int | None
    database: str | None
    user: str | None
    password: SecretStr | None
    options: dict


class Credentials(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str | None = None
    port: int | None = None
    database: str
    user: str | None = None
    password: SecretStr | None = None
    options: dict[str, str | int | float | bool] = {}

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> Credentials:
        return cls(
            host=settings.host,
            port=settings.port,
            database=settings.database or "",
            user=settings.user,
            password=settings.password,
            options=settings.options,
        )

    def overlaid(
        self,
        *,
        host: str | None,
        port: int | None,
        database: str | None,
        user: str | None,
        password: str | None,
    ) -> Credentials:
        """These settings with an Airflow connection's values on top (unset ones
        keep tenant.yaml's)."""
        return self.model_copy(
            update={
                "host": host or self.host,
                "port": port or self.port,
                "database": database or self.database,
                "user": user or self.user,
                "password": SecretStr(password) if password else self.password,
            }
        )

    def scrub(self, text: str) -> str:
        """`text` without the password, should a driver echo it."""
        if self.password is not None and self.password.get_secret_value():
            return text.replace(self.password.get_secret_value(), "***")
        return text
