"""dbt's Trino profile from a tenant's Airflow Trino connection, whatever its auth.

Cosmos has one mapping class per authentication method (LDAP needs a password,
JWT a token), and the class is chosen when the DAG is parsed, where the
connection must not be read. A stack Trino without authentication (the
compose file's `mozart_<tenant>_trino`: a user, no password) fits none of
them. This mapping reads the connection when the dbt task runs and picks the
method from what it carries: a password → `ldap`, an extra `jwt__token` →
`jwt`, neither → `none` (the user alone, as rules.json grants by user).
Secrets go to the profile as environment variables, as Cosmos does.
"""

from __future__ import annotations

from typing import Any

from cosmos.profiles.trino.base import TrinoBaseProfileMapping


class TrinoConnectionProfileMapping(TrinoBaseProfileMapping):
    """A Trino profile whose method follows the connection's auth."""

    airflow_param_mapping = {
        "password": "password",
        "jwt_token": "extra.jwt__token",
        **TrinoBaseProfileMapping.airflow_param_mapping,
    }

    @property
    def method(self) -> str:
        if self.conn.password:
            return "ldap"
        if self.conn.extra_dejson.get("jwt__token"):
            return "jwt"
        return "none"

    @property
    def _secret(self) -> str | None:
        return {"ldap": "password", "jwt": "jwt_token"}.get(self.method)

    @property
    def profile(self) -> dict[str, Any]:
        profile = {**super().profile, "method": self.method}
        for field in ("password", "jwt_token"):
            profile.pop(field, None)
        secret = self._secret
        if secret is not None:
            profile[secret] = self.get_env_var_format(secret)
        protocol = self.conn.extra_dejson.get("protocol")
        if protocol in ("http", "https"):
            profile["http_scheme"] = protocol
        return self.filter_null(profile)

    @property
    def env_vars(self) -> dict[str, str]:
        env = dict(super().env_vars)  # secret_fields is empty: tracking only
        secret = self._secret
        if secret is not None:
            env[self.get_env_var_name(secret)] = str(self.get_dbt_value(secret))
        return env
