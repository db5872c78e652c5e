"""The MozartError for a failed read of the source, terminal or not as the
driver's error says (`mozart_etl.core.driver_errors`): the extract, the key scan
and the reconcile's count raise the same errors for the same causes.
"""

from __future__ import annotations

from mozart_etl.core.driver_errors import Cause, classify, missing_column
from mozart_etl.core.errors import (
    SourceAccessDenied,
    SourceError,
    SourceSchemaError,
    SourceValueRejected,
)
from mozart_etl.extract.connectors.base import Connector


def source_error(
    exc: BaseException, connector: Connector, *, doing: str, tenant: str, table: str
) -> SourceError:
    """The MozartError for a failed read of the source: terminal or not as
    `classify` says, the driver's message scrubbed of the password, and what to
    fix when a retry cannot help. Callers raise it `from None`: the driver's
    exception (and its traceback) may echo connection settings."""
    error = getattr(exc, "orig", None) or exc
    text = connector.credentials.scrub(str(error).strip())
    head = f"{doing} {connector.describe()} failed: {text}"
    cause = classify(exc)
    if cause is Cause.ACCESS:
        return SourceAccessDenied(
            f"{head} (the source refused the user, the database or the grants; "
            "a retry cannot help: fix the source credentials or grant SELECT)",
            tenant=tenant,
            table=table,
        )
    if cause is Cause.SCHEMA:
        column = missing_column(text)
        what = f"column {column!r}" if column else "table"
        return SourceSchemaError(
            f"{head} (the source has no such {what}; a retry cannot help: fix "
            "the source or the table's declaration in tenant.yaml)",
            tenant=tenant,
            table=table,
            column=column,
        )
    if cause is Cause.VALUE:
        column = missing_column(text)
        return SourceValueRejected(
            f"{head} (the source's data fails the read; a retry reads the same "
            "rows: fix the row, the query or the column's declaration, then "
            "clear the day)",
            tenant=tenant,
            table=table,
            column=column,
        )
    return SourceError(head, tenant=tenant, table=table)
