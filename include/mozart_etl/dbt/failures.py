"""Which dbt failures a retry can fix, and the retry policy the dbt tasks carry.

A dbt task failed the same way three times, five minutes apart, when a staging
model named a column raw does not have: a compilation or binder error, or a
failing dbt test on the same raw snapshot, gives the same answer on every try,
so the retries only delay the alert. A locked DuckDB file or an unreachable
Trino is another matter: the next try may pass.

Cosmos raises `CosmosDbtRunError` with dbt's own text (each failed node's name
and message) and offers no hook to classify it; Airflow's `retry_policy`
(every operator takes one; Cosmos passes `operator_args` through) sees the
exception at failure time and decides retry or fail. So the decision is made
on dbt's message: the markers below are the ones dbt, DuckDB and Trino print.
A message matching neither list keeps Airflow's standard retries.

Imported at DAG parse time: only `re` and the Task SDK's policy classes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import RetryDecision, RetryPolicy

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

# Checked first: a message naming both (say, a binder error reported while the
# connection dropped) gets a retry, the cheaper mistake.
TRANSIENT = {
    "DuckDB file locked": r"Could not set lock on file|Conflicting lock is held",
    "database is locked": r"database is locked",
    "DuckDB IO Error": r"\bIO Error\b",
    "connection refused": r"Connection refused|ConnectionRefusedError",
    "connection reset": r"Connection reset|Connection aborted|RemoteDisconnected",
    "connection failed": r"Failed to establish a new connection|Max retries exceeded",
    "timeout": r"timed out|TimeoutError|Read timeout|EXCEEDED_TIME_LIMIT",
    "name resolution": r"Temporary failure in name resolution|Name or service not",
    "Trino unavailable": r"NO_NODES_AVAILABLE|SERVER_STARTING_UP|SERVER_SHUTTING_DOWN"
    r"|503 Service Unavailable|502 Bad Gateway",
}
DETERMINISTIC = {
    "dbt Compilation Error": r"\bCompilation Error\b",
    "dbt Parsing Error": r"\bParsing Error\b",
    "Binder Error": r"\bBinder Error\b",
    "Catalog Error": r"\bCatalog Error\b",
    "Parser Error": r"\bParser Error\b",
    "Conversion Error": r"\bConversion Error\b",
    "missing column": r"(?i:column) [^\n]{1,200}? (?:not found|cannot be resolved)",
    "Trino query error": r"\b(?:COLUMN|TABLE|SCHEMA|CATALOG|FUNCTION)_NOT_FOUND\b"
    r"|\bSYNTAX_ERROR\b|\bTYPE_MISMATCH\b|\bAMBIGUOUS_NAME\b|\bMISSING_COLUMN_NAME\b",
    # dbt's own wording for a test whose failing rows crossed its threshold.
    "dbt test failed": r"Got \d+ results?, configured to fail if",
}
_TRANSIENT = [(cause, re.compile(p, re.IGNORECASE)) for cause, p in TRANSIENT.items()]
_DETERMINISTIC = [(cause, re.compile(p)) for cause, p in DETERMINISTIC.items()]


@dataclass(frozen=True)
class Verdict:
    """What a failure's text says: `retryable` is None when it says nothing
    (Airflow's standard retries apply); `cause` names the marker found."""

    retryable: bool | None
    cause: str = ""


def classify_dbt_failure(message: str) -> Verdict:
    """Transient markers first, then deterministic ones, else no opinion."""
    for cause, pattern in _TRANSIENT:
        if pattern.search(message):
            return Verdict(retryable=True, cause=cause)
    for cause, pattern in _DETERMINISTIC:
        if pattern.search(message):
            return Verdict(retryable=False, cause=cause)
    return Verdict(retryable=None)


def failure_text(exception: BaseException) -> str:
    """The exception's text and its causes' (dbt's error may be the cause of
    what Cosmos or the Task SDK raised)."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


class DbtRetryPolicy(RetryPolicy):
    """Fail a dbt task at once when no retry can change dbt's answer; retry a
    transient one (within the task's `retries`); otherwise Airflow's default.

    Runs in the worker; the serialized DAG keeps only a flag that a policy
    exists (Airflow re-parses the DAG file on the worker for the object).
    """

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        verdict = classify_dbt_failure(failure_text(exception))
        task = _task_label(context)
        if verdict.retryable is False:
            log.error(
                "%s: dbt failed deterministically (%s); failing at try %d, "
                "without the task's %d retries",
                task,
                verdict.cause,
                try_number,
                max_tries,
            )
            return RetryDecision.fail(f"no retry can fix it: {verdict.cause}")
        if verdict.retryable:
            log.warning("%s: transient dbt failure (%s)", task, verdict.cause)
            return RetryDecision.retry(reason=f"transient: {verdict.cause}")
        return RetryDecision.default()


def _task_label(context: Context | Any | None) -> str:
    """`dag_id.task_id` (the tenant and the dbt node) for the log line."""
    ti = (context or {}).get("ti")
    if ti is None:
        return "dbt task"
    return f"{ti.dag_id}.{ti.task_id}"
