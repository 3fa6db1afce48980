"""config.json records every component's resolved options, so a run is reproduced from it alone; every registered
component rebuilds identically from its recorded options; ``--epochs`` has one meaning for every strategy."""

from __future__ import annotations

import json

import pytest

import nas_core
from nas_core._resolved import resolved_options
from nas_core.cli import main

pytest.importorskip("nas_spaces")
pytest.importorskip("nas_objectives")
pytest.importorskip("nas_strategies")

TINY = ["--space", "nb201", "--objective", "mim", "--strategy", "darts", "--epochs", "2", "--limit", "48",
        "--img-size", "16", "--set", "space.channels=4", "--set", "space.num_cells=1", "--set", "space.img_size=16",
        "--set", "strategy.batch_size=8", "--set", "strategy.steps_per_epoch=3", "--set", "pictures=false",
        "--no-progress"]


def test_a_run_is_reproduced_from_its_config_json_alone(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["search", *TINY, "--run-dir", str(first)]) == 0
    cfg = json.loads((first / "config.json").read_text())
    # what the user did not set is recorded too: the defaults the components used
    assert cfg["strategy"]["w_lr"] == 0.025 and cfg["strategy"]["a_betas"] == [0.5, 0.999]
    assert cfg["objective"]["mask_ratio"] == 0.5 and cfg["space"]["num_classes"] == 10
    assert main(["search", "--config", str(first / "config.json"), "--run-dir", str(second)]) == 0
    a, b = (json.loads((d / "result.json").read_text()) for d in (first, second))
    assert a["best"] == b["best"] and a["history"] == b["history"]


def _registered():
    pm = nas_core.get_plugin_manager()
    for kind in ("space", "objective", "strategy", "proxy"):
        for entry in pm.registry(kind):
            yield kind, entry


@pytest.mark.parametrize("kind, entry", list(_registered()), ids=lambda x: getattr(x, "name", x))
def test_recorded_options_rebuild_the_same_component(kind, entry):
    smoke = dict(entry.metadata.get("smoke") or {})
    recorded = json.loads(json.dumps(resolved_options(kind, entry.name, smoke)))  # as config.json holds them
    assert smoke.items() <= recorded.items()
    original, rebuilt = entry.create(**smoke), entry.create(**recorded)
    if callable(getattr(original, "config", None)):
        assert json.dumps(rebuilt.config(), sort_keys=True, default=str) == json.dumps(original.config(), sort_keys=True, default=str)


@pytest.mark.parametrize("strategy, option", [("darts", "epochs"), ("evolution", "train_epochs"), ("random", "train_epochs")])
def test_epochs_means_training_epochs_for_every_strategy(strategy, option):
    space = "vit" if strategy != "darts" else "nb201"
    cfg = nas_core.resolve_config(space, "mim", strategy, epochs=3)
    assert cfg["strategy"][option] == 3
