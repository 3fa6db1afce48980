"""The composition facade and the search/train/bench/show commands, on the nas_core.testing fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nas_core
from nas_core import ConfigError, IncompatibleError, SearchResult
from nas_core.testing import FakePlugin


@pytest.fixture
def fakes(register_plugin):
    register_plugin(FakePlugin(), "fake")


def test_search_composes_names_and_fills_the_run_directory(fakes, tmp_path):
    rd = tmp_path / "run"
    res = nas_core.search(space="fake", objective="fake", strategy="fake", data="digits", limit=48, img_size=16,
                          budget=4, run_dir=rd, progress=False)
    assert isinstance(res, SearchResult) and res.space == "fake" and res.strategy == "fake" and res.objective == "fake"
    assert res.versions["nas-core"] == nas_core.__version__ and "torch" in res.versions
    for name in ("config.json", "result.json", "history.jsonl", "checkpoint.pt", "cells.png", "history.png"):
        assert (rd / name).exists(), name
    saved = json.loads((rd / "result.json").read_text())
    assert saved["best"] == str(res.best) and saved["versions"] == res.versions and saved["seed"] == 0
    cfg = json.loads((rd / "config.json").read_text())
    # every component's options, the defaults it used included (config.json alone reproduces the run)
    assert cfg["space"] == {"name": "fake", "channels": 4, "num_classes": 10}
    assert cfg["strategy"]["name"] == "fake" and cfg["strategy"]["budget"] == 4
    assert cfg["run"]["limit"] == 48
    again = nas_core.search(space="fake", objective="fake", strategy="fake", data="digits", limit=48, img_size=16,
                            budget=4, progress=False)
    assert again.best == res.best  # deterministic for the seed


def test_search_uses_the_given_plugin_manager_for_names_hooks_and_refusals(nas_plugins):
    """search(plugin_manager=pm) builds from pm's registries and fires pm's hooks; the shared manager (here one that
    knows no names) is never consulted."""
    from nas_core.testing import FakeSpace

    class NoSupernet(FakeSpace):
        capabilities = frozenset({"enumerable"})

    class Plug(FakePlugin):
        @nas_core.hookimpl
        def nas_register_spaces(self, registry):
            super().nas_register_spaces(registry)
            registry.add("flat", NoSupernet, capabilities=NoSupernet.capabilities)

    ends = []

    class Watch:
        @nas_core.hookimpl
        def nas_run_end(self, result):
            ends.append(result)

    own = nas_core.NasPluginManager(autoload=False)
    own.register_plugin(Plug(), "fake")
    own.register_plugin(Watch(), "watch")
    assert nas_core.list_spaces() == []  # the shared manager (the nas_plugins fixture) has none of them
    res = nas_core.search(space="fake", objective="fake", strategy="fake", data="digits", limit=16, img_size=16,
                          budget=2, progress=False, plugin_manager=own)
    assert res.space == "fake" and ends == [res]
    with pytest.raises(IncompatibleError) as e:  # the alternatives come from that manager too
        nas_core.search(space="flat", objective="fake", strategy="fake", plugin_manager=own)
    assert "Spaces that work with 'fake': fake." in str(e.value)
    back = SearchResult.from_json(res.to_json(), spaces=own.registry("space"))
    assert back.best == res.best
    with pytest.raises(ConfigError, match="needs the space of the result"):
        SearchResult.from_json(res.to_json())


def test_search_accepts_instances(fakes):
    space = nas_core.create_space("fake", channels=2)
    res = nas_core.search(space=space, proxy=nas_core.create_proxy("fake"), strategy=nas_core.create_strategy("fake", budget=3),
                          data="digits", limit=16, img_size=16, progress=False)
    assert res.best.ops and res.proxy == "fake"


def test_option_routing_errors_name_the_fix(fakes):
    with pytest.raises(ConfigError) as e:
        nas_core.search(space="fake", objective="fake", strategy="fake", chanels=3)
    assert "option 'chanels' is not accepted by any component" in str(e.value)
    assert "space 'fake': channels, num_classes" in str(e.value)


def test_compile_is_refused_where_the_strategy_would_ignore_it(fakes, tmp_path):
    rd = tmp_path / "run"
    with pytest.raises(ConfigError, match="compile=True: strategy 'fake' does not run through torch.compile"):
        nas_core.search(space="fake", objective="fake", strategy="fake", compile=True, run_dir=rd)
    assert not rd.exists()


def test_incompatible_pair_is_refused_before_compute(register_plugin, tmp_path):
    from nas_core.testing import FakeSpace, FakeStrategy

    class NoSupernet(FakeSpace):
        capabilities = frozenset({"enumerable"})

    class Plug(FakePlugin):
        @nas_core.hookimpl
        def nas_register_spaces(self, registry):
            registry.add("flat", NoSupernet, capabilities=NoSupernet.capabilities)

    register_plugin(Plug(), "plug")
    rd = tmp_path / "run"
    with pytest.raises(IncompatibleError) as e:
        nas_core.search(space="flat", objective="fake", strategy="fake", run_dir=rd)
    assert "needs a space whose supernet is single_path" in str(e.value)
    assert not rd.exists(), "a refused run must not create its run directory"


def test_tensorboard_tracker_is_read_back(fakes, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rd = tmp_path / "run"
    nas_core.search(space="fake", objective="fake", strategy="fake", data="digits", limit=32, img_size=16, budget=3,
                    train_steps=2, run_dir=rd, trackers=["tensorboard"], progress=False)
    acc = EventAccumulator(str(rd / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"step/loss", "epoch/best_fitness", "candidate/fitness"} <= set(tags)
    fitness = [e.value for e in acc.Scalars("candidate/fitness")]
    result = json.loads((rd / "result.json").read_text())
    assert len(fitness) == 3 and max(fitness) == pytest.approx(result["candidates"][0]["scores"]["fitness"], rel=1e-6)


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path):
    site = tmp_path / "site"
    info = site / "nas_fake-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nas-fake\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[nas]\nfake = nas_core.testing:FAKE_PLUGIN\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    return env


def nas(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nas_core.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_cli_search_config_overrides_show_bench_train(cli_env, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'space = "fake"\n[run]\ndata = "digits"\nlimit = 64\nimg_size = 16\n'
        '[objective]\nname = "fake"\n[strategy]\nname = "fake"\nbudget = 6\ntrain_steps = 1\n'
    )
    rd = tmp_path / "run"
    r = nas(cli_env, "search", "--config", str(cfg), "--set", "strategy.budget=3", "--run-dir", str(rd), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "nas search finished" in r.stdout and f"run dir    {rd}" in r.stdout and "nas train" in r.stdout
    saved = json.loads((rd / "result.json").read_text())
    assert len(saved["candidates"]) == 3, "command-line override must win over the config file"
    assert json.loads((rd / "config.json").read_text())["strategy"]["budget"] == 3

    r = nas(cli_env, "search", "--config", str(cfg), "--run-dir", str(rd), "--no-progress")
    assert r.returncode == 2 and "already holds a run" in r.stderr and "--resume" in r.stderr

    (rd / "cells.png").unlink()
    r = nas(cli_env, "show", str(rd))
    assert r.returncode == 0, r.stderr
    assert saved["best"] in r.stdout and (rd / "cells.png").exists()

    r = nas(cli_env, "train", str(rd), "--epochs", "4", "--limit", "400", "--img-size", "16", "--batch-size", "32", "--no-progress")
    assert r.returncode == 0, r.stderr
    out = json.loads((rd / "train" / "train.json").read_text())
    assert out["arch"] == saved["best"] and out["num_classes"] == 10 and out["params"] > 0
    losses = [h["train_loss"] for h in out["history"]]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.8 * losses[0], losses
    assert out["val_acc"] > 40.0, out["history"]  # 10 digit classes: chance is 10%

    table = tmp_path / "t.json"
    table.write_text(json.dumps({"meta": {"dataset": "toy"}, "rows": [
        {"arch": saved["best"], "val_accuracy": 80.0, "proxies": {"p": 1.5}},
        {"arch": "x", "val_accuracy": 90.0}]}))
    r = nas(cli_env, "bench", saved["best"], "--table", str(table))
    assert r.returncode == 0 and "80.00%" in r.stdout and "rank 2 of 2" in r.stdout and "p 1.5" in r.stdout
    r = nas(cli_env, "bench", "nope", "--table", str(table))
    assert r.returncode == 2 and "is not in" in r.stderr


def test_cli_resume_continues_the_configured_run(cli_env, tmp_path):
    rd = tmp_path / "run"
    args = ["search", "--space", "fake", "--objective", "fake", "--strategy", "fake", "--data", "digits", "--limit", "32",
            "--img-size", "16", "--set", "budget=4", "--run-dir", str(rd), "--no-progress"]
    assert nas(cli_env, *args).returncode == 0
    first = json.loads((rd / "result.json").read_text())
    r = nas(cli_env, "search", "--resume", str(rd), "--epochs", "3")
    assert r.returncode == 2 and "drop --epochs" in r.stderr
    r = nas(cli_env, "search", "--resume", str(rd), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads((rd / "result.json").read_text())["best"] == first["best"]


def test_cli_config_errors_are_readable(cli_env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[strategy]\nepochs = 3\n')
    r = nas(cli_env, "search", "--config", str(bad))
    assert r.returncode == 2 and "section [strategy] needs a 'name'" in r.stderr
    bad.write_text('spcae = "nb201"\n')
    r = nas(cli_env, "search", "--config", str(bad))
    assert r.returncode == 2 and "unknown top-level key 'spcae'" in r.stderr
    r = nas(cli_env, "search", "--space", "fake", "--objective", "fake", "--strategy", "fake", "--set", "budgte=3")
    assert r.returncode == 2 and "option 'budgte' is not accepted" in r.stderr


def test_official_nats_bench_files_are_read_through_its_api(tmp_path, monkeypatch):
    """The adapter to the nats_bench API (not installed here: a stand-in module with its documented calls)."""
    import types

    from nas_core import BenchmarkTable
    from nas_core import DataError

    archs = ["|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|",
             "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    calls = []

    class Api:
        def __len__(self):
            return len(archs)

        def arch(self, idx):
            return archs[idx]

        def get_more_info(self, idx, dataset, hp, is_random):
            calls.append((idx, dataset, hp, is_random))
            return {"valid-accuracy": 90.0 - idx, "test-accuracy": 0.0}

    def create(path, search_space, fast_mode, verbose):
        assert search_space == "tss" and path.endswith("NATS-tss-v1_0-3ffb9-simple")
        return Api()

    official = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    official.mkdir()
    with pytest.raises(DataError, match="pip install nats_bench"):
        BenchmarkTable.load(official)
    monkeypatch.setitem(sys.modules, "nats_bench", types.SimpleNamespace(create=create))
    table = BenchmarkTable.load(official)
    assert len(table) == 2 and table.accuracy(archs[1]) == 89.0 and table.best().arch == archs[0]
    assert calls[0] == (0, "cifar10-valid", "200", False)  # NB201's CIFAR-10 validation split, 200-epoch schedule
    BenchmarkTable.load(official, dataset="cifar100")
    assert calls[-1][1] == "cifar100"


def test_the_toml_fallback_is_declared():
    """_config.py reads TOML with tomllib (3.11+) and falls back to tomli: nas-core must depend on it there."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the declared fallback
        import tomli as tomllib

    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parents[1]
    assert "import tomli as tomllib" in (root / "src" / "nas_core" / "_config.py").read_text()
    deps = [Requirement(d) for d in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]]
    tomli = [d for d in deps if d.name == "tomli"]
    assert tomli and tomli[0].marker is not None
    assert tomli[0].marker.evaluate({"python_version": "3.10"}) and not tomli[0].marker.evaluate({"python_version": "3.11"})
