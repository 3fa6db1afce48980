"""The README's main job, shortened: `nas search` with no space/objective/strategy runs the label-free quickstart
(MIM + DARTS on nb201, embedded digits) with every installed package, and its run directory feeds `nas show`,
`nas train` and `nas bench`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nas_core import BenchmarkTable
from nas_core.commands.search import QUICKSTART


def nas(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nas_core.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    rd = tmp_path_factory.mktemp("quick") / "run"
    # the quickstart, shortened to 3 epochs on 256 images; everything else is the out-of-the-box configuration
    r = nas("search", "--epochs", "3", "--limit", "256", "--run-dir", str(rd), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    return rd, r


def test_quickstart_is_a_label_free_mim_darts_search_on_nb201(quick_run):
    rd, r = quick_run
    assert "running the quickstart search" in r.stderr
    # no terminal here: one progress line per epoch instead of bars
    assert "nas: epoch 1/3  train_loss" in r.stderr and "nas: epoch 3/3" in r.stderr and "ETA" in r.stderr
    assert "nas search finished" in r.stdout and "nas train" in r.stdout
    cfg = json.loads((rd / "config.json").read_text())
    assert cfg["space"]["name"] == "nb201" and cfg["objective"]["name"] == "mim" and cfg["strategy"]["name"] == "darts"
    assert cfg["strategy"]["epochs"] == 3 and cfg["strategy"]["a_lr"] == QUICKSTART["strategy"]["a_lr"]
    assert not cfg["run"].get("labels"), "the default search must not load labels"

    res = json.loads((rd / "result.json").read_text())
    for dist in ("nas-core", "nas-spaces", "nas-objectives", "nas-strategies", "torch"):
        assert dist in res["versions"], f"result.json must record the version of {dist}: {res['versions']}"
    assert res["seed"] == 0 and res["cost"]["params"] > 0
    import nas_core

    space = nas_core.create_space("nb201", **{k: v for k, v in res["space_config"].items()})
    arch = space.parse(res["best"])
    assert str(arch) == res["best"]

    epochs = [json.loads(line) for line in (rd / "history.jsonl").read_text().splitlines() if '"epoch"' in line]
    epochs = [e for e in epochs if e.get("kind") == "epoch"]
    assert len(epochs) == 3 and epochs[-1]["train_loss"] < epochs[0]["train_loss"], epochs
    for picture in ("cells.png", "alphas.png", "history.png"):
        assert (rd / picture).stat().st_size > 1000, picture


def test_show_train_and_bench_consume_the_run(quick_run, shared_data):
    rd, _ = quick_run
    best = json.loads((rd / "result.json").read_text())["best"]
    (rd / "alphas.png").unlink()
    r = nas("show", str(rd))
    assert r.returncode == 0, r.stderr
    assert best in r.stdout and (rd / "alphas.png").exists()

    r = nas("bench", str(rd), "--table", str(shared_data / "nb201_cifar10.json"), "--json")
    # the shared table holds 1104 of the 15625 NB201 cells: the row's accuracy, or an error naming the miss
    table = BenchmarkTable.load(shared_data / "nb201_cifar10.json")
    if best in table:
        assert r.returncode == 0, r.stderr
        looked_up = json.loads(r.stdout)
        assert looked_up["arch"] == best and looked_up["val_accuracy"] == table.accuracy(best)
    else:
        assert r.returncode == 2 and "is not in" in r.stderr, r.stderr

    r = nas("train", str(rd), "--epochs", "2", "--limit", "300", "--batch-size", "32", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "UserWarning" not in r.stderr, r.stderr[-3000:]
    out = json.loads((rd / "train" / "train.json").read_text())
    assert out["arch"] == best and out["num_classes"] == 10 and out["params"] > 0 and out["flops"] > 0
    assert out["history"][-1]["train_loss"] < out["history"][0]["train_loss"]


def test_train_inherit_fine_tunes_the_subnet_of_a_vit_search(tmp_path):
    rd = tmp_path / "vit"
    space = ["--set", "space.img_size=16", "--set", "space.patch_size=4", "--set", "space.embed_dims=[16,24]",
             "--set", "space.depths=[2,3]", "--set", "space.num_heads=[1,2]", "--set", "space.mlp_ratios=[2.0,3.0]",
             "--set", "space.head_dim=8", "--set", "space.feature_stages=2"]
    strategy = ["--set", "strategy.train_epochs=2", "--set", "strategy.batch_size=16", "--set", "strategy.population=4",
                "--set", "strategy.generations=2", "--set", "strategy.parents=2", "--set", "strategy.eval_batches=1",
                "--set", "strategy.calib_batches=1"]
    r = nas("search", "--space", "vit", "--objective", "mim", "--strategy", "evolution", "--limit", "128", "--img-size", "16",
            *space, *strategy, "--run-dir", str(rd), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    best = json.loads((rd / "result.json").read_text())["best"]

    r = nas("train", str(rd), "--inherit", "--epochs", "2", "--limit", "200", "--batch-size", "32", "--lr", "0.01",
            "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((rd / "train" / "train.json").read_text())
    assert out["inherit"] is True and out["arch"] == best and out["num_classes"] == 10
    assert out["history"][-1]["train_loss"] < out["history"][0]["train_loss"]

    # a space configured unlike the search cannot take the checkpoint: refused with the reason and the fix
    r = nas("train", str(rd), "--inherit", "--out", str(tmp_path / "t2"), "--space-option", "embed_dims=[16,32]")
    assert r.returncode == 2 and "another shape" in r.stderr and "drop --space-option" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "t2" / "train.json").exists()
