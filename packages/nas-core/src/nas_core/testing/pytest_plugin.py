"""Opt-in pytest plugin: ``pytest_plugins = ["nas_core.testing.pytest_plugin"]``.

Fixtures:

``nas_plugins``
    an isolated :class:`nas_core.NasPluginManager` (entry points not loaded) installed as the
    shared manager for the test, so ``create_space`` & co. see only what the test registers.
``register_plugin``
    ``register_plugin(obj, name=None)`` registers into that manager and unregisters after the test.
``nas_context``
    a CPU :class:`nas_core.RunContext` (seed 0, run directory under ``tmp_path``, no progress bars).
``shared_data``
    the ``../shared/data`` directory with the NAS-Bench-201 tables; the test is skipped when it is
    absent, and fails instead when ``CI=true``.
``analognas``
    the AnalogNAS-Bench table of all 15,625 NB201 cells (``nas-core[analognas]``); skipped when the
    package is not installed, and fails instead when ``CI=true``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from .._plugins import NasPluginManager, use_plugin_manager
from ._shared import shared_data_dir


@pytest.fixture
def nas_plugins() -> Iterator[NasPluginManager]:
    pm = NasPluginManager(autoload=False)
    with use_plugin_manager(pm):
        yield pm


@pytest.fixture
def register_plugin(nas_plugins: NasPluginManager) -> Iterator[Callable[..., str]]:
    names: list[str] = []

    def register(plugin: Any, name: str | None = None) -> str:
        n = nas_plugins.register_plugin(plugin, name)
        names.append(n)
        return n

    yield register
    for n in reversed(names):
        nas_plugins.unregister_plugin(n)


@pytest.fixture
def nas_context(tmp_path: Path) -> Any:
    from .._context import RunContext

    return RunContext(device="cpu", seed=0, run_dir=tmp_path / "run", progress=False, distributed=False)


@pytest.fixture(scope="session")
def shared_data(pytestconfig: pytest.Config) -> Path:
    found = shared_data_dir(pytestconfig.rootpath)
    if found is None:
        msg = (
            "needs the NAS-Bench-201 ground truth in ../shared/data beside the checkout (or NAS_SHARED_DATA); "
            "it is not part of the repository"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " - and CI=true, where it must be present")
        pytest.skip(msg)
    return found


@pytest.fixture(scope="session")
def analognas() -> Any:
    from .._errors import DataError
    from .._table import BenchmarkTable

    try:
        return BenchmarkTable.load("analognas")
    except DataError as exc:
        msg = f"needs AnalogNAS-Bench (pip install 'nas-core[analognas]'): {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " - and CI=true, where the test environments install it")
        pytest.skip(msg)
