"""Fixtures shared by the e2e tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mozart_etl.demo.acme import drop_acme_database


@pytest.fixture
def acme_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """acme's MariaDB database, reached through the Airflow connection env var."""
    name = f"mozart_acme_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_CONN_ACME_MES", f"mysql://root@127.0.0.1:3306/{name}")
    try:
        yield name
    finally:
        drop_acme_database(name)
