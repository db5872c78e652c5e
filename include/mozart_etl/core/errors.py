"""Errors that carry the tenant/table context and say whether a retry can help."""

from __future__ import annotations


class MozartError(Exception):
    """Base error; `terminal` errors fail the task without a retry."""

    terminal: bool = True

    def __init__(
        self,
        message: str,
        *,
        tenant: str | None = None,
        table: str | None = None,
        column: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.message = message
        self.tenant = tenant
        self.table = table
        self.column = column
        self.rule = rule
        super().__init__(self._render())

    def _render(self) -> str:
        where = [
            f"{label}={value}"
            for label, value in (
                ("tenant", self.tenant),
                ("table", self.table),
                ("column", self.column),
                ("rule", self.rule),
            )
            if value
        ]
        return f"[{' '.join(where)}] {self.message}" if where else self.message


class ConfigError(MozartError):
    """tenant.yaml is missing, malformed or inconsistent."""


class SourceError(MozartError):
    """The source database refused or failed a query; often transient."""

    terminal = False


class SourceSchemaError(SourceError):
    """The source lacks a declared table or column, or holds a type that cannot
    become the declared one: a retry reads the same catalog, so it fails at once."""

    terminal = True


class SourceAccessDenied(SourceError):
    """The source refused the login or the read: a wrong user or password, no
    such database, no privilege on the table. Retrying sends the same
    credentials to the same grants, so it fails at once (the message never
    carries the password)."""

    terminal = True


class SourceValueRejected(SourceError):
    """A source value does not fit its column's declared type (an undecodable
    decimal, invalid UTF-8, a date out of range): a retry reads the same row,
    so it fails at once, naming the column; fix the row or the declaration,
    then clear the day."""

    terminal = True


class SourceValueTooLarge(SourceError):
    """A value is larger than a limit (the extract's configured maximum, or a
    server's): the same rows hit the same limit on a retry, so it fails at once,
    naming the column, the size and the limit to raise."""

    terminal = True


class LakeWriteError(MozartError):
    """Writing the lake failed (a full disk, permissions, object storage); the
    attempt left no manifest, so nothing reads its files. A retry may pass."""

    terminal = False


class ValidationFailed(MozartError):
    """An `error`-severity rule or the drift policy rejected an extract."""


class LoadError(MozartError):
    """Writing the raw Iceberg table failed; the previous snapshot stays current."""

    terminal = False


class LoadRejected(LoadError):
    """The rows cannot be loaded as they are (a retry gives the same answer)."""

    terminal = True


class RefreshRefused(LoadRejected):
    """A full refresh would empty (or shrink past the table's threshold) a raw
    table: refused until allowed in tenant.yaml; raw is untouched."""

    terminal = True


class ReconcileMismatch(MozartError):
    """The source's count (or declared sum) over a window differs from raw's."""


class PublishError(MozartError):
    """Writing marts to the target database failed; its tables are as they were."""

    terminal = False


class PublishRejected(PublishError):
    """The target refused the rows (types, constraints, a missing mart): a retry
    gives the same answer, so the task fails at once."""

    terminal = True


class TransformFailed(MozartError):
    """A table's Python transform raised or returned rows that do not fit its
    schema; the raw table is untouched (the load never starts)."""
