"""Registry and factories: names, aliases, lazy factories, presets, options, clashes, unknown names."""

from __future__ import annotations

import re
import sys
import textwrap

import pytest

import nas_core
from nas_core import (
    ConfigError,
    RegistryClashError,
    UnknownNameError,
    create_space,
    hookimpl,
    list_spaces,
    normalize_name,
)
from nas_core.testing import FakePlugin, FakeSpace


class Spaces:
    @hookimpl
    def nas_register_spaces(self, registry):
        registry.add("nb201", FakeSpace, aliases=("nasbench201",), summary="pretend nb201", capabilities=FakeSpace.capabilities)
        registry.add("nb201_small", FakeSpace, defaults={"channels": 2}, summary="preset")
        registry.add("darts", FakeSpace)


def test_normalize_name():
    assert normalize_name(" NB-201 ") == "nb_201"
    assert normalize_name("Darts S1") == "darts_s1"
    with pytest.raises(TypeError):
        normalize_name(3)  # type: ignore[arg-type]


def test_create_by_name_alias_and_case(register_plugin):
    register_plugin(Spaces(), "spaces")
    assert isinstance(create_space("nb201"), FakeSpace)
    assert isinstance(create_space("NasBench201"), FakeSpace)
    assert create_space("NB201", channels=3).channels == 3
    assert list_spaces() == ["darts", "nb201", "nb201_small"]
    assert list_spaces("nb*") == ["nb201", "nb201_small"]
    assert list_spaces("nb*", exclude="*small") == ["nb201"]


def test_preset_defaults_are_overridden_and_none_pruned(register_plugin):
    register_plugin(Spaces(), "spaces")
    assert create_space("nb201_small").channels == 2
    assert create_space("nb201_small", channels=5).channels == 5
    assert create_space("nb201_small", channels=None).channels == 2
    assert create_space("nb201").registered_name == "nb201"


def test_unknown_option_names_valid_ones(register_plugin):
    register_plugin(Spaces(), "spaces")
    with pytest.raises(ConfigError) as e:
        create_space("nb201", chanels=3)
    msg = str(e.value)
    assert "space 'nb201': unknown option 'chanels'" in msg
    assert "channels" in msg and "Did you mean 'channels'?" in msg


def test_unknown_name_suggests_lists_and_hints(register_plugin):
    register_plugin(Spaces(), "spaces")
    with pytest.raises(KeyError) as e:
        create_space("nb210")
    err = e.value
    assert isinstance(err, UnknownNameError)
    msg = str(err)
    assert msg.startswith("Unknown space 'nb210'. Did you mean 'nb201'?")
    assert "Installed: darts, nb201, nb201_small (plugin 'spaces')" in msg
    assert msg == err.message and not msg.startswith("'")  # str() is the readable message, not KeyError's repr
    assert err.suggestions[0] == "nb201"


def test_unknown_first_party_name_says_which_distribution(nas_plugins):
    with pytest.raises(UnknownNameError) as e:
        create_space("vit")
    msg = str(e.value)
    assert "Installed: none." in msg
    # the install command names what works where nas-core came from (a checkout's folder here, else the index)
    assert "'vit' is provided by nas-spaces: pip install " in msg and msg.rstrip().endswith("nas-spaces")
    with pytest.raises(UnknownNameError) as e:
        nas_core.create_proxy("zzz")
    assert "pip install " in str(e.value) and "nas-proxies" in str(e.value).split("pip install ")[-1]


def test_clash_names_both_registrants(nas_plugins):
    class Other:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("nb201", FakeSpace, defaults={"channels": 9})
            registry.add("other_space", FakeSpace)

    nas_plugins.register_plugin(Spaces(), "spaces")
    nas_plugins.register_plugin(Other(), "other")
    with pytest.warns(RuntimeWarning, match="nas plugin 'other'"):
        assert list_spaces() == ["darts", "nb201", "nb201_small", "other_space"]  # no command dies of it
    assert nas_core.get_entry("space", "nb201").origin.plugin == "spaces"  # the first registration is kept
    assert create_space("nb201").channels != 9
    info = {i.name: i for i in nas_plugins.plugins_info()}["other"]
    assert re.search(r"space 'nb201' from plugin 'other' \(.*Other\) clashes with plugin 'spaces' \(.*Spaces\), which "
                     r"registered it first", info.error), info.error
    assert "nas_core.unregister_plugin('other') or nas_core.unregister_plugin('spaces')" in info.error
    # a registry used on its own (no plugin manager) raises the clash
    reg = nas_core.Registry("space")
    reg.add("x", FakeSpace)
    with pytest.raises(RegistryClashError, match="space 'x' from plugin '<python>' clashes with plugin '<python>'.*replace=True"):
        reg.add("x", FakeSpace)


@pytest.mark.filterwarnings("ignore:nas plugin:RuntimeWarning")
def test_alias_clash_and_replace(nas_plugins):
    class AliasClash:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("nasbench201", FakeSpace)

    class Replacer:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("darts", FakeSpace, defaults={"channels": 7}, replace=True)

    nas_plugins.register_plugin(Spaces(), "spaces")
    nas_plugins.register_plugin(Replacer(), "replacer")
    assert create_space("darts").channels == 7
    nas_plugins.register_plugin(AliasClash(), "alias")
    assert create_space("nasbench201").registered_name == "nb201"
    info = {i.name: i for i in nas_plugins.plugins_info()}
    assert "space 'nasbench201' from plugin 'alias'" in info["alias"].error and "alias of 'nb201'" in info["alias"].error


@pytest.mark.filterwarnings("ignore:nas plugin:RuntimeWarning")
def test_replace_wins_whichever_plugin_registers_first(nas_plugins):
    class EagerReplacer:
        @hookimpl(tryfirst=True)
        def nas_register_spaces(self, registry):
            registry.add("darts", FakeSpace, defaults={"channels": 7}, replace=True)

    nas_plugins.register_plugin(Spaces(), "spaces")
    nas_plugins.register_plugin(EagerReplacer(), "eager")
    assert create_space("darts").channels == 7
    assert all(i.ok for i in nas_plugins.plugins_info())


def test_lazy_factory_is_imported_only_on_create(nas_plugins, tmp_path, monkeypatch):
    mod = tmp_path / "lazy_space_mod.py"
    mod.write_text(
        textwrap.dedent(
            """
            from nas_core.testing import FakeSpace
            class LazySpace(FakeSpace):
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    class Lazy:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("lazy", "lazy_space_mod:LazySpace")

    nas_plugins.register_plugin(Lazy(), "lazy")
    assert list_spaces() == ["lazy"]
    assert "lazy_space_mod" not in sys.modules
    space = create_space("lazy")
    assert type(space).__name__ == "LazySpace" and "lazy_space_mod" in sys.modules
    sys.modules.pop("lazy_space_mod", None)


def test_broken_lazy_factory_names_the_target(nas_plugins):
    class Broken:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("broken", "no_such_module_xyz:Thing")

    nas_plugins.register_plugin(Broken(), "broken")
    with pytest.raises(nas_core.PluginError, match="no_such_module_xyz:Thing"):
        create_space("broken")


def test_invalid_names_and_factories_are_rejected(nas_plugins):
    class Bad:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("fine", FakeSpace)
            registry.add("bad name!", FakeSpace)

    nas_plugins.register_plugin(Bad(), "bad")
    nas_plugins.register_plugin(Spaces(), "spaces")
    with pytest.warns(RuntimeWarning, match="space name 'bad name!' is invalid"):
        assert list_spaces() == ["darts", "nb201", "nb201_small"]  # the failed plugin registers nothing
    info = {i.name: i for i in nas_plugins.plugins_info()}["bad"]
    assert info.failed_at == "registration" and "PluginError" in info.error and info.registered == {}


def test_fake_plugin_registers_every_kind(register_plugin):
    register_plugin(FakePlugin(), "fake")
    assert nas_core.list_spaces() == ["fake"]
    assert nas_core.list_objectives() == ["fake"]
    assert nas_core.list_strategies() == ["fake"]
    assert nas_core.list_proxies() == ["fake", "fake_grad"]
    entry = nas_core.get_entry("space", "fake")
    assert entry.origin.plugin == "fake" and "single_path" in entry.metadata["capabilities"]
