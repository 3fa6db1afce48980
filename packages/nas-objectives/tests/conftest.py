import sys
from pathlib import Path

import pytest
import torch

import nas_objectives.plugin

pytest_plugins = ["nas_core.testing.pytest_plugin"]

# the tiny test backbones live in objectives_helpers.py beside this file (importlib import mode)
sys.path.insert(0, str(Path(__file__).parent))

# Other suites share the 2 CPU cores; one thread keeps timings stable and the suite fast.
torch.set_num_threads(1)


@pytest.fixture
def objectives(nas_plugins, register_plugin):
    """An isolated plugin manager holding only this package's objectives."""
    register_plugin(nas_objectives.plugin, "objectives")
    return nas_plugins
