"""Session-wide inputs of the live tests: the demo source and the tenant templates.

The live tests run only through `make live` (part of `make test`); the default
pytest run leaves this folder out (`--ignore=tests/live` in pyproject.toml).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mozart_etl.demo.generate import SourceSummary, generate_demo_source
from tests.live.tenants import FULL, RAW, Template, build_template
from tests.live.timings import (  # the wall times tests record, at the end
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

__all__ = ["pytest_sessionfinish", "pytest_terminal_summary", "pytest_testnodedown"]


@pytest.fixture(scope="session")
def live_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("live")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def mozart_home_dir() -> Path:
    """Where tenants' lakes, catalogs and warehouses go (the session's MOZART_HOME)."""
    return Path(os.environ["MOZART_HOME"])


@pytest.fixture(scope="session")
def demo_source(live_dir: Path) -> SourceSummary:
    """The deterministic demo MES source (SQLite), generated once; tests copy it."""
    return generate_demo_source(live_dir / "sources" / "plant.sqlite")


TemplateBuilder = Callable[..., dict[str, Path]]


@pytest.fixture(scope="session")
def template_builder(live_dir: Path) -> TemplateBuilder:
    """Tenant templates by kind, each built once per session (per pytest
    worker: the live modules run on their own workers), the missing ones side
    by side."""
    built: dict[str, Path] = {}

    def build(*kinds: Template) -> dict[str, Path]:
        missing = [kind for kind in kinds if kind.name not in built]
        with ThreadPoolExecutor(max_workers=2) as pool:
            folders = pool.map(
                lambda t: build_template(live_dir / "templates", t), missing
            )
            built.update(
                (kind.name, folder)
                for kind, folder in zip(missing, folders, strict=True)
            )
        return {kind.name: built[kind.name] for kind in kinds}

    return build


@pytest.fixture(scope="session")
def templates(template_builder: TemplateBuilder) -> dict[str, Path]:
    """Both tenant templates."""
    return template_builder(FULL, RAW)
