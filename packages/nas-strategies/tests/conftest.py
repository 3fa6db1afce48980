"""Fixtures for the nas-strategies tests: an isolated plugin manager holding the nas-core fakes and this
package's plugin, toy spaces with a known best operation, and a resume harness."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

# the test helpers (strategies_toys.py) sit beside this file; --import-mode=importlib does not add it to the path
sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["nas_core.testing.pytest_plugin"]

torch.set_num_threads(1)


@pytest.fixture
def registry(nas_plugins: Any, register_plugin: Callable[..., str]) -> Any:
    """The fakes (space/objective/proxies 'fake', 'fake_grad') and our strategies, nothing else."""
    import nas_strategies.plugin
    from nas_core.testing import FakePlugin

    register_plugin(FakePlugin(), "fake")
    register_plugin(nas_strategies.plugin, "strategies")
    return nas_plugins
