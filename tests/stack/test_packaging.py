"""Packaging: the image gets the runtime requirements only, and the package
installed alone (`pip install .` over those pins) imports every module.

requirements.txt is what the Dockerfile installs; requirements-dev.txt adds the
test and development tools for `make env`. pyproject.toml must declare what the
package imports, so an install of the package without this repository's
requirements files still pulls what it needs.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "mozart_etl"
RUNTIME = ROOT / "requirements.txt"
DEV = ROOT / "requirements-dev.txt"
OVERRIDES = ROOT / "requirements-overrides.txt"
STACK = ROOT / "stack" / "requirements-stack.txt"
DOCKERFILE = ROOT / "Dockerfile"
UV = Path(sys.executable).parent / "uv"

# Distributions that only tests and development use: none may reach the image.
TEST_TOOLS = re.compile(
    r"pytest(-.*)?|playwright|moto|ruff|hypothesis|coverage|mypy|responses"
    r"|execnet|iniconfig|faker|freezegun|pre-commit|tox|nox"
)
# Declared although nothing imports them: dbt loads its adapters by the
# profile's type, and Airflow its providers (notifiers, connection types) by
# name; see the comments in requirements.in.
LOADED_BY_NAME = {
    "dbt-duckdb",
    "dbt-trino",
    "apache-airflow-providers-slack",
    "apache-airflow-providers-smtp",
    "apache-airflow-providers-openlineage",
    "apache-airflow-providers-standard",
    "apache-airflow",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a uv-compiled file (comments and `via` skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)", line)
        if match:
            pins[_normalise(match.group(1))] = match.group(3)
    return pins


def _declared() -> dict[str, str]:
    """pyproject's dependencies: normalised name → the requirement as written."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {}
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)  # type: ignore[union-attr]
        names[_normalise(name)] = requirement
    return names


def _third_party_imports() -> set[str]:
    """Top-level modules the package imports that are neither stdlib nor itself."""
    modules: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"mozart_etl"}


def _package_modules() -> list[str]:
    """Every module of mozart_etl, as the image has them (dotted names)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


# --- static ----------------------------------------------------------------------


def test_image_requirements_hold_no_test_tool() -> None:
    for path in (RUNTIME, STACK):
        tools = sorted(name for name in _pins(path) if TEST_TOOLS.fullmatch(name))
        assert tools == [], f"{path.name} pins test tools: {tools}"


def test_the_pattern_catches_test_tools() -> None:
    """The check above can fail: the dev file has exactly the tools it names."""
    tools = {name for name in _pins(DEV) if TEST_TOOLS.fullmatch(name)}
    assert {"pytest", "pytest-xdist", "playwright", "moto", "ruff"} <= tools


def test_dev_requirements_keep_the_runtime_pins() -> None:
    """requirements-dev.txt is compiled against requirements.txt: a package in
    both has one version, so `make env` installs what the image has."""
    runtime, dev = _pins(RUNTIME), _pins(DEV)
    moved = {n: (runtime[n], dev[n]) for n in runtime.keys() & dev.keys()}
    assert {n: v for n, v in moved.items() if v[0] != v[1]} == {}
    assert "-c requirements.txt" in (ROOT / "requirements-dev.in").read_text()


def test_dockerfile_installs_runtime_requirements_only() -> None:
    text = DOCKERFILE.read_text()
    instructions = [
        line for line in text.splitlines() if line and not line.lstrip().startswith("#")
    ]
    assert not [line for line in instructions if "requirements-dev" in line]
    assert "COPY --chown=airflow:0 requirements.txt" in text
    installs = re.findall(r"pip install[^\n]*(?:\\\n[^\n]*)*", text)
    assert any("-r /opt/mozart/requirements.txt" in line for line in installs)
    assert any("--no-deps -e /opt/mozart" in line for line in installs)


def test_pyproject_declares_what_the_package_imports() -> None:
    declared = _declared()
    distributions = packages_distributions()
    missing = {}
    for module in sorted(_third_party_imports()):
        names = {_normalise(d) for d in distributions.get(module, [])}
        assert names, f"{module}: no installed distribution provides it"
        if not names & declared.keys():
            missing[module] = sorted(names)
    assert missing == {}, f"imported but not in pyproject.toml: {missing}"


def test_every_declared_dependency_is_used_and_pinned() -> None:
    distributions = packages_distributions()
    imported = {
        _normalise(d)
        for module in _third_party_imports()
        for d in distributions.get(module, [])
    }
    runtime = _pins(RUNTIME)
    for name in _declared():
        assert name in imported | LOADED_BY_NAME, f"{name}: declared, never used"
        assert name in runtime, f"{name}: declared but not pinned in requirements.txt"


def test_the_providers_the_stack_needs_are_pinned() -> None:
    """smtp and slack (the notifiers), mysql (a MariaDB source connection in the
    UI), amazon (the lake's AWS connection, #27); the trino provider gives the
    `trino` connection type of AIRFLOW_CONN_MOZART_TRINO."""
    runtime = _pins(RUNTIME)
    direct = (ROOT / "requirements.in").read_text()
    for provider in ("smtp", "slack", "mysql", "amazon", "trino", "postgres"):
        name = f"apache-airflow-providers-{provider}"
        assert re.search(rf"^{name}==", direct, re.M), name
        assert name in runtime, name
    assert not re.search(r"^pandas", direct, re.M)  # no direct pin: nothing uses it
    assert "mysqlclient" not in runtime  # left out by requirements-overrides.txt
    assert re.search(
        r'^mysqlclient ; sys_platform == "never"', OVERRIDES.read_text(), re.M
    )


# --- `pip install .` alone --------------------------------------------------------


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with requirements.txt only, then the package from a copy of
    its sources (a non-editable install, as a wheel would be). uv links from its
    cache, so this takes seconds once the cache holds the pins."""
    if not UV.exists():
        pytest.skip("uv is not in the test interpreter's venv (make env installs it)")
    work = tmp_path_factory.mktemp("pkg")
    source = work / "src"
    shutil.copytree(
        PACKAGE,
        source / "include" / "mozart_etl",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    shutil.copy(ROOT / "pyproject.toml", source / "pyproject.toml")
    venv = work / "venv"
    uv = [
        str(UV),
        "pip",
        "install",
        "--quiet",
        "--python",
        str(venv / "bin/python"),
        "--link-mode",
        "hardlink",
        "--override",
        str(OVERRIDES),
    ]
    subprocess.run(
        [str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True
    )
    subprocess.run([*uv, "-r", str(RUNTIME)], check=True, cwd=work)
    # The package alone, its dependencies held to the pins: a dependency that
    # pyproject declares beyond requirements.txt would fail to resolve here.
    subprocess.run([*uv, "-c", str(RUNTIME), str(source)], check=True, cwd=work)
    return venv


def test_installed_package_imports_every_module(
    runtime_venv: Path, tmp_path: Path
) -> None:
    modules = _package_modules()
    assert len(modules) > 90  # the whole package, not a stray subset
    script = (
        "import importlib, importlib.util, json, sys\n"
        f"modules = {modules!r}\n"
        "for name in modules:\n"
        "    importlib.import_module(name)\n"
        "origin = importlib.util.find_spec('mozart_etl').origin\n"
        "tools = [t for t in ('pytest', 'playwright', 'moto', 'ruff')\n"
        "         if importlib.util.find_spec(t)]\n"
        "print(json.dumps({'origin': origin, 'tools': tools, 'n': len(modules)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env |= {"AIRFLOW_HOME": str(tmp_path / "airflow"), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run(
        [str(runtime_venv / "bin/python"), "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    # Imported from the installed copy, not this checkout, and no test tool.
    assert result["origin"].startswith(str(runtime_venv)), result["origin"]
    assert result["tools"] == []
    assert result["n"] == len(modules)


def test_installed_entry_point_runs(runtime_venv: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(runtime_venv / "bin/mozart"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "validate" in done.stdout
