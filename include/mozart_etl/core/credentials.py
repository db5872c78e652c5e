"""Resolved connection settings, shared by the source connectors and publish.

Settings come from tenant.yaml (`source`, `publish.target`) and, where a
`conn_id` is given, from that Airflow connection, whose values win. The
password is a SecretStr: never in a repr, a log line or an error.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Protocol, Self
from urllib.parse import quote, quote_plus, urlparse

from pydantic import BaseModel, ConfigDict, SecretStr


class ConnectionSettings(Protocol):
    """What tenant.yaml's `source` and `publish.target` blocks have in common
    (read-only: both are frozen models)."""

    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def database(self) -> str | None: ...
    @property
    def user(self) -> str | None: ...
    @property
    def password(self) -> SecretStr | None: ...
    @property
    def options(self) -> Mapping[str, str | int | float | bool]: ...


class Credentials(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str | None = None
    port: int | None = None
    database: str
    user: str | None = None
    password: SecretStr | None = None
    options: dict[str, str | int | float | bool] = {}

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> Self:
        return cls(
            host=settings.host,
            port=settings.port,
            database=settings.database or "",
            user=settings.user,
            password=settings.password,
            options=dict(settings.options),
        )

    def overlaid(
        self,
        *,
        host: str | None,
        port: int | None,
        database: str | None,
        user: str | None,
        password: str | None,
        options: Mapping[str, str | int | float | bool] | None = None,
    ) -> Self:
        """These settings with an Airflow connection's values on top (unset ones
        keep tenant.yaml's); the connection's driver options (its extra) are
        merged over tenant.yaml's `options`, key by key."""
        return self.model_copy(
            update={
                "host": host or self.host,
                "port": port or self.port,
                "database": database or self.database,
                "user": user or self.user,
                "password": SecretStr(password) if password else self.password,
                "options": {**self.options, **(options or {})},
            }
        )

    def secret_forms(self) -> list[str]:
        """Every form the password may take in a message, longest first."""
        if self.password is None or not self.password.get_secret_value():
            return []
        return secret_forms(self.password.get_secret_value(), user=self.user)

    def scrub(self, text: str) -> str:
        """`text` without the password (raw, URL-encoded or base64), should a
        driver echo it or a DSN holding it."""
        for form in self.secret_forms():
            text = text.replace(form, "***")
        return text


class S3Access(BaseModel):
    """The lake's object store as pyarrow and PyIceberg reach it: endpoint,
    region and keys, resolved from an Airflow AWS connection or tenant.yaml
    (mozart_etl.core.lake.s3_access). One value for both clients, so the Parquet
    lake and the Iceberg warehouse can never be read with different keys."""

    model_config = ConfigDict(frozen=True)

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None

    def pyarrow_options(self) -> dict[str, object]:
        """Keyword arguments of `pyarrow.fs.S3FileSystem`."""
        options: dict[str, object] = {}
        if self.region:
            options["region"] = self.region
        if self.endpoint_url:
            endpoint = urlparse(self.endpoint_url)
            options["endpoint_override"] = endpoint.netloc or endpoint.path
            options["scheme"] = endpoint.scheme or "https"
        if self.access_key_id and self.secret_access_key:
            options["access_key"] = self.access_key_id
            options["secret_key"] = self.secret_access_key.get_secret_value()
            if self.session_token:
                options["session_token"] = self.session_token.get_secret_value()
        return options

    def pyiceberg_properties(self) -> dict[str, str]:
        """PyIceberg's `s3.*` properties (its catalog and FileIO)."""
        properties: dict[str, str] = {}
        if self.region:
            properties["s3.region"] = self.region
        if self.endpoint_url:
            properties["s3.endpoint"] = self.endpoint_url
        if self.access_key_id and self.secret_access_key:
            properties["s3.access-key-id"] = self.access_key_id
            properties["s3.secret-access-key"] = (
                self.secret_access_key.get_secret_value()
            )
            if self.session_token:
                properties["s3.session-token"] = self.session_token.get_secret_value()
        return properties

    def secret_forms(self) -> list[str]:
        """Every form of the secret key and session token, for the log masker."""
        forms: list[str] = []
        if self.secret_access_key and self.secret_access_key.get_secret_value():
            secret = self.secret_access_key.get_secret_value()
            forms += secret_forms(secret, user=self.access_key_id)
        if self.session_token and self.session_token.get_secret_value():
            forms += secret_forms(self.session_token.get_secret_value())
        return sorted(set(forms), key=len, reverse=True)


def secret_forms(secret: str, *, user: str | None = None) -> list[str]:
    """The secret as written, URL-encoded (a DSN), base64 (alone, or HTTP basic
    `user:secret`), longest first so a longer form is replaced whole."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    pairs = [secret] + ([f"{user}:{secret}"] if user else [])
    for pair in pairs:
        raw = pair.encode("utf-8")
        forms |= {
            base64.b64encode(raw).decode("ascii"),
            base64.urlsafe_b64encode(raw).decode("ascii"),
        }
        # Unpadded base64 (as in JWTs and some DSNs) is a prefix of the padded.
        forms |= {form.rstrip("=") for form in list(forms)}
    return sorted(forms, key=len, reverse=True)
