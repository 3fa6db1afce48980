"""Plugin discovery: entry points with per-plugin isolation, hook validation, switches, CLI listing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import nas_core
from nas_core import NasPluginManager, PluginError, create_space, hookimpl, use_plugin_manager
from nas_core.testing import FakeSpace


def make_dist(root: Path, dist: str, version: str, ep_name: str, module: str, source: str) -> None:
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[nas]\n{ep_name} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


GOOD = """
from nas_core import hookimpl
from nas_core.testing import FakeSpace

@hookimpl
def nas_register_spaces(registry):
    registry.add("ring", FakeSpace, summary="a space from an installed plugin")
"""

BROKEN = """
raise ImportError("No module named 'torchzz' (a dependency of this plugin)")
"""

TYPO = """
from nas_core import hookimpl

@hookimpl
def nas_register_space(registry):
    registry.add("typo", object)
"""

RAISES = """
from nas_core import hookimpl

@hookimpl
def nas_register_spaces(registry):
    raise RuntimeError("config file missing")
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    make_dist(tmp_path, "nas-good", "1.0", "good", "nasgood_plugin", GOOD)
    make_dist(tmp_path, "nas-broken", "2.0", "broken", "nasbroken_plugin", BROKEN)
    make_dist(tmp_path, "nas-typo", "0.3", "typo", "nastypo_plugin", TYPO)
    make_dist(tmp_path, "nas-raises", "0.1", "raises", "nasraises_plugin", RAISES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NAS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("NAS_DISABLED_PLUGINS", raising=False)
    yield tmp_path
    for m in ("nasgood_plugin", "nasbroken_plugin", "nastypo_plugin", "nasraises_plugin"):
        sys.modules.pop(m, None)


def load(**kw) -> NasPluginManager:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pm = NasPluginManager(**kw)
        pm.plugins_info()
    return pm


def infos(pm: NasPluginManager) -> dict:
    return {i.name: i for i in pm.plugins_info()}


@pytest.mark.filterwarnings("ignore:nas plugin:RuntimeWarning")
def test_broken_plugins_are_reported_and_do_not_stop_the_others(site):
    with pytest.warns(RuntimeWarning, match="'broken' \\(nas-broken 2.0\\) failed to load"):
        pm = NasPluginManager(autoload=True)
        pm.plugins_info()
    got = infos(pm)
    assert got["good"].ok and got["good"].registered == {"space": ["ring"]}
    assert got["good"].dist == "nas-good" and got["good"].version == "1.0"
    assert "torchzz" in got["broken"].error
    assert "unknown hook 'nas_register_space'" in got["typo"].error
    assert "did you mean 'nas_register_spaces'" in got["typo"].error
    assert "raised RuntimeError: config file missing" in got["raises"].error
    with use_plugin_manager(pm):
        assert isinstance(create_space("ring"), FakeSpace)
        with pytest.raises(KeyError) as e:
            create_space("rign")
    msg = str(e.value)
    assert "Did you mean 'ring'?" in msg
    assert "Plugin 'broken' (nas-broken 2.0) failed to load" in msg
    pm.check_pending()  # the typo plugin was never registered, so nothing is pending


FIRST_PARTY_SPACES = """
from nas_core import hookimpl
from nas_core.testing import FakeSpace

@hookimpl
def nas_register_spaces(registry):
    registry.add("vit", FakeSpace)
"""


def test_disable_autoload_and_block_by_name(site, monkeypatch):
    make_dist(site, "nas-spaces", "9.0", "spaces_fake", "nasspacesfake_plugin", FIRST_PARTY_SPACES)
    monkeypatch.setenv("NAS_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = load()
    got = infos(pm)
    # listed as disabled, never imported
    assert got["good"].blocked and got["good"].disabled_by == "NAS_DISABLE_PLUGIN_AUTOLOAD=1" and got["good"].dist == "nas-good"
    assert "nasgood_plugin" not in sys.modules and "nasbroken_plugin" not in sys.modules
    with use_plugin_manager(pm), pytest.raises(KeyError) as e:
        create_space("vit")
    msg = str(e.value)
    assert "'vit' is provided by nas-spaces, which is installed but disabled by NAS_DISABLE_PLUGIN_AUTOLOAD=1." in msg
    assert "pip install nas-spaces" not in msg
    assert "Installed but disabled: nas-broken (by NAS_DISABLE_PLUGIN_AUTOLOAD=1)" in msg

    monkeypatch.delenv("NAS_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("NAS_DISABLED_PLUGINS", "good,nas-broken, nas-spaces")
    pm = load()
    got = infos(pm)
    assert got["good"].blocked and got["broken"].blocked and got["broken"].error is None
    assert got["good"].disabled_by == "NAS_DISABLED_PLUGINS=good,nas-broken, nas-spaces"
    assert not got["raises"].blocked and got["raises"].error  # not named: loaded (and failing as before)
    with use_plugin_manager(pm):
        with pytest.raises(KeyError, match="Installed but disabled: nas-broken .*nas-good"):
            create_space("ring")
        with pytest.raises(KeyError, match="'vit' is provided by nas-spaces, which is installed but disabled by NAS_DISABLED_PLUGINS"):
            create_space("vit")
    sys.modules.pop("nasspacesfake_plugin", None)


RINGER = """
from nas_core import hookimpl
from nas_core.testing import FakeSpace

class Ringer(FakeSpace):
    pass

@hookimpl
def nas_register_spaces(registry):
    registry.add("ring", Ringer, summary="the ringer's own ring")
    registry.add("ring_extra", Ringer)
"""


@pytest.mark.filterwarnings("ignore:nas plugin:RuntimeWarning")
def test_a_plugin_that_takes_a_registered_name_fails_alone(site, monkeypatch):
    make_dist(site, "nas-ringer", "9.9", "ringer", "nasringer_plugin", RINGER)
    with pytest.warns(RuntimeWarning, match="'ringer' \\(nas-ringer 9.9\\): space 'ring' from nas-ringer 9.9"):
        pm = NasPluginManager(autoload=True)
        pm.plugins_info()
    got = infos(pm)
    # the first registration (good, loaded first) is kept; the clash is the newcomer's failure, naming both
    # distributions and the switch that turns each off; its other names still register
    assert got["good"].ok and got["good"].registered == {"space": ["ring"]}
    err = got["ringer"].error
    assert got["ringer"].status == "failed" and got["ringer"].failed_at == "clash"
    assert "space 'ring' from nas-ringer 9.9 (nasringer_plugin) clashes with nas-good 1.0 (nasgood_plugin)" in err
    assert "NAS_DISABLED_PLUGINS=nas-ringer or NAS_DISABLED_PLUGINS=nas-good" in err
    assert got["ringer"].registered == {"space": ["ring_extra"]}
    with use_plugin_manager(pm):
        assert type(create_space("ring")) is FakeSpace and type(create_space("ring_extra")).__name__ == "Ringer"
        with pytest.raises(KeyError, match="Plugin 'ringer' \\(nas-ringer 9.9\\) failed to load: space 'ring'"):
            create_space("rign")
    # the switch named in the message works: the ringer's ring, and no failure
    monkeypatch.setenv("NAS_DISABLED_PLUGINS", "nas-good")
    pm = load()
    got = infos(pm)
    assert got["ringer"].ok and got["ringer"].registered == {"space": ["ring", "ring_extra"]}
    with use_plugin_manager(pm):
        assert type(create_space("ring")).__name__ == "Ringer"
    sys.modules.pop("nasringer_plugin", None)


def test_cli_survives_a_clashing_plugin(site):
    import os

    make_dist(site, "nas-ringer", "9.9", "ringer", "nasringer_plugin", RINGER)
    env = {"PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    r = run_cli("--version", env_extra=env)
    assert r.returncode == 0 and r.stdout.strip() == f"nas-core {nas_core.__version__}", r.stderr
    r = run_cli("plugins", env_extra=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    ringer = r.stdout[r.stdout.index("ringer "):]
    assert "nas-ringer 9.9" in ringer and "FAILED" in ringer and "clashes with nas-good 1.0" in ringer
    assert "NAS_DISABLED_PLUGINS=nas-ringer" in ringer and "spaces       ring_extra" in ringer
    sys.modules.pop("nasringer_plugin", None)


def test_duplicate_entry_point_names_across_distributions(site, tmp_path_factory, monkeypatch):
    other = tmp_path_factory.mktemp("other")
    make_dist(other, "nas-good-fork", "9.9", "good", "nasgoodfork_plugin", GOOD.replace("ring", "ring2"))
    monkeypatch.syspath_prepend(str(other))
    pm = load()
    errors = [i.error for i in pm.plugins_info() if i.error and "already used" in i.error]
    assert errors and "entry-point names must be unique" in errors[0]
    sys.modules.pop("nasgoodfork_plugin", None)


def test_trace_switch_prints_hook_calls(site, monkeypatch, capsys):
    monkeypatch.setenv("NAS_TRACE_PLUGINS", "1")
    pm = load()
    pm.registry("space")
    err = capsys.readouterr().err
    # registration hooks go through pluggy like the others: one traced call per plugin
    assert "[nas trace] nas_register_spaces(registry) -> impls ['good']" in err
    assert "[nas trace] nas_register_spaces raised RuntimeError('config file missing')" in err
    pm.nas_run_start(context=None)
    err = capsys.readouterr().err
    assert "[nas trace] nas_run_start(context)" in err


def test_registration_hooks_honour_wrappers_and_call_order(nas_plugins):
    seen = []

    class Watcher:  # a wrapper (any plugin's) wraps every plugin's registration call
        @hookimpl(wrapper=True)
        def nas_register_spaces(self, registry):
            before = set(registry.names())
            result = yield
            seen.append(sorted(set(registry.names()) - before))
            return result

    class First:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("shared", FakeSpace, summary="first")
            registry.add("only_first", FakeSpace)

    class Eager:  # registered later, but tryfirst: it is called first and keeps the shared name
        @hookimpl(tryfirst=True)
        def nas_register_spaces(self, registry):
            registry.add("shared", FakeSpace, summary="eager")

    nas_plugins.register_plugin(Watcher(), "watcher")
    nas_plugins.register_plugin(First(), "first")
    nas_plugins.register_plugin(Eager(), "eager")
    with pytest.warns(RuntimeWarning, match="'first': space 'shared' from plugin 'first' .* clashes with plugin 'eager'"):
        assert nas_core.get_entry("space", "shared").summary == "eager"
    assert seen == [["shared"], ["only_first"]]  # eager first, then first (whose 'shared' was refused)
    got = infos(nas_plugins)
    assert got["first"].failed_at == "clash" and "nas_core.unregister_plugin('first')" in got["first"].error
    assert got["watcher"].ok and got["watcher"].registered == {}


def test_python_plugin_with_fewer_arguments_and_unknown_hook(nas_plugins):
    calls = []

    class Tracker:
        @hookimpl
        def nas_epoch_end(self, metrics):  # opt-in: fewer arguments than the spec
            calls.append(dict(metrics))

    nas_plugins.register_plugin(Tracker(), "tracker")
    nas_plugins.nas_epoch_end(context=None, epoch=3, metrics={"loss": 1.5})
    assert calls == [{"loss": 1.5}]

    class Typo:
        @hookimpl
        def nas_run_begin(self, context):
            pass

    with pytest.raises(PluginError, match="unknown hook 'nas_run_begin'.*nas_run_start"):
        nas_plugins.register_plugin(Typo(), "typo")


def test_unregister_removes_names(nas_plugins):
    class P:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("tmp", FakeSpace)

    nas_plugins.register_plugin(P(), "p")
    assert nas_core.list_spaces() == ["tmp"]
    nas_plugins.unregister_plugin("p")
    assert nas_core.list_spaces() == []


def run_cli(*args: str, env_extra: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "nas_core.cli", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_cli_plugins_lists_failures_and_registrations(site):
    import os

    path = os.pathsep.join([str(site), *sys.path])
    r = run_cli("plugins", "--names", env_extra={"PYTHONPATH": path})
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert "core" in out and "nas-core" in out
    assert "good" in out and "nas-good 1.0" in out and "spaces       ring" in out
    assert "FAILED" in out and "torchzz" in out
    assert "ring" in out and "a space from an installed plugin" in out
    r = run_cli("plugins", "--json", env_extra={"PYTHONPATH": path})
    import json

    data = {d["name"]: d for d in json.loads(r.stdout)}
    assert data["broken"]["status"] == "failed" and data["good"]["registered"] == {"space": ["ring"]}


def test_cli_version_help_and_fast_listing():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"nas-core {nas_core.__version__}"
    r = run_cli("--help")
    assert r.returncode == 0 and "plugins" in r.stdout
    code = (
        "import sys, nas_core.cli\n"
        "try:\n    nas_core.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "False", "nas --help imported torch"
    r = run_cli("nosuchcommand")
    assert r.returncode == 2 and "invalid choice" in r.stderr
