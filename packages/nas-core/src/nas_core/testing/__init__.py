"""Testing kit for nas plugins: tiny fakes honouring every contract, and contract suites.

Run a suite over every name your package registers::

    import pytest
    from nas_core import create_space, list_spaces
    from nas_core.testing import check_space

    @pytest.mark.parametrize("name", list_spaces())
    def test_space_contract(name):
        check_space(create_space(name, channels=4))

The opt-in pytest plugin (``pytest_plugins = ["nas_core.testing.pytest_plugin"]``) adds the
``nas_plugins`` and ``register_plugin`` fixtures.
"""

from ._checks import (
    assert_module_unchanged,
    check_feature_info,
    check_objective,
    check_proxy,
    check_space,
    check_strategy,
    snapshot_module,
)
from ._fakes import (
    FAKE_OPS,
    FakeArch,
    FakeBackbone,
    FakeGradProxy,
    FakeNet,
    FakeObjective,
    FakePlugin,
    FakeProxy,
    FakeSpace,
    FakeStrategy,
    FakeSupernet,
    fake_images,
)
from ._shared import shared_data_dir

#: a ready instance, so an entry point (`fake = "nas_core.testing:FAKE_PLUGIN"`) can load the fakes
FAKE_PLUGIN = FakePlugin()

__all__ = [
    "check_space",
    "check_objective",
    "check_strategy",
    "check_proxy",
    "check_feature_info",
    "snapshot_module",
    "assert_module_unchanged",
    "FAKE_OPS",
    "FakeArch",
    "FakeSpace",
    "FakeSupernet",
    "FakeNet",
    "FakeBackbone",
    "FakeObjective",
    "FakeStrategy",
    "FakeProxy",
    "FakeGradProxy",
    "FakePlugin",
    "fake_images",
    "shared_data_dir",
    "FAKE_PLUGIN",
]
