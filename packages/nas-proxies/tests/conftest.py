from __future__ import annotations

import pytest
import torch

pytest_plugins = ["nas_core.testing.pytest_plugin"]

torch.set_num_threads(1)


@pytest.fixture
def proxies_plugin(register_plugin):
    """An isolated plugin manager holding only nas-proxies' plugin (and the nas-core fakes)."""
    import nas_proxies.plugin
    from nas_core.testing import FakePlugin

    register_plugin(nas_proxies.plugin, "proxies")
    register_plugin(FakePlugin(), "fake")
    return nas_proxies.plugin
