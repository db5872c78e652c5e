"""Process environment variables set for the length of one block."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


@contextmanager
def scoped_environ(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block, then put back what was there
    (a variable that was unset is unset again): dbt's `env_var()` and
    Airflow's parsing context read the process environment."""
    saved = saved_environ(values)
    os.environ.update(values)
    try:
        yield
    finally:
        restore_environ(saved)


def saved_environ(keys: Iterable[str]) -> dict[str, str | None]:
    """The current values of `keys` (None: unset), for `restore_environ`."""
    return {key: os.environ.get(key) for key in keys}


def restore_environ(saved: dict[str, str | None]) -> None:
    """Put back what `saved_environ` saw: its values, and unset what was unset."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


__all__ = ["restore_environ", "saved_environ", "scoped_environ"]
