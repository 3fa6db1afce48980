"""The command line never crashes on bad input.

A table of bad inputs drives ``nas`` in-process (``nas_core.cli.main``): each must exit 2, print no traceback,
name the option or file at fault, and fail before any compute (a training step anywhere fails the test).
Property-based tests (hypothesis) throw arbitrary ``--set`` values and architecture strings at ``--check``: every
answer is 0 (valid) or 2 (named), never a crash.
"""

from __future__ import annotations

import json
import shlex
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nas_core import RunContext
from nas_core._rundir import RunLock
from nas_core.cli import main

NB201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"
TINY = "--space nb201 --set space.channels=4 --set space.num_cells=1 --limit 64 --no-progress"
S = f"search {TINY} --run-dir {{w}}/new"  # a valid search; each case adds one mistake
T = f"train '{NB201}' --space nb201 --epochs 1 --limit 64 --no-progress --out {{w}}/tout"  # a valid training


def _png(path: Path) -> None:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def _run_config(**strategy: object) -> str:
    return json.dumps({"run": {"data": "digits", "limit": 64, "img_size": 32, "seed": 0, "device": "cpu"},
                       "space": {"name": "nb201", "channels": 4, "num_cells": 1}, "objective": {"name": "mim"},
                       "strategy": {"name": "darts", "epochs": 2, "batch_size": 16, **strategy}})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files and directories the bad inputs point at (nothing here is a valid finished run)."""
    w = tmp_path_factory.mktemp("world")
    (w / "afile").write_text("not a directory\n")
    (w / "full").mkdir()
    (w / "full" / "notes.txt").write_text("someone else's")
    (w / "left").mkdir()
    (w / "left" / "config.json").write_text("{}")
    (w / "left" / "history.jsonl").write_text("{}\n")
    (w / "held").mkdir()
    (w / "held" / "checkpoint.pt").write_bytes(b"")
    for name, cfg, result in [
        ("cfg_bad", '{"run": ', None), ("cfg_list", "[]", None), ("cfg_noname", '{"run": {}}', None),
        ("cfg_binary", b"\xff\xfe\x00\x01", None),
        ("res_bad", None, '{"best": '), ("res_list", None, "[1]"), ("res_nobest", None, '{"space": "nb201"}'),
        ("res_badarch", None, '{"best": "garbage-arch", "space": "nb201"}'),
        ("res_space", None, json.dumps({"best": NB201, "space": "nb210"})),
        ("res_cfg", None, json.dumps({"best": NB201, "space": "nb201", "space_config": {"channels": "wide"}})),
        ("res_cfglist", None, json.dumps({"best": NB201, "space": "nb201", "space_config": [4]})),
        ("res_cands", None, json.dumps({"best": NB201, "space": "nb201", "candidates": [{"scores": {}}]})),
        ("valid", _run_config(), json.dumps({"best": NB201, "space": "nb201", "space_config": {"channels": 4, "num_cells": 1}})),
        ("locked", _run_config(), None), ("linked", _run_config(), None),
    ]:
        d = w / name
        d.mkdir()
        if cfg is not None:
            (d / "config.json").write_bytes(cfg if isinstance(cfg, bytes) else cfg.encode())
            (d / "checkpoint.pt").write_bytes(b"not a checkpoint")
        if result is not None:
            (d / "result.json").write_text(result)
    (w / "linked" / "history.jsonl").symlink_to(w / "afile")
    (w / "shown").mkdir()
    (w / "shown" / "result.json").write_text((w / "valid" / "result.json").read_text())
    (w / "shown" / "cells.png").symlink_to(w / "afile")
    for name, good, bad in (("imgs_mixed", 1, 1), ("imgs_bad", 0, 2), ("imgs_empty", 0, 0)):
        d = w / name
        (d / "cls").mkdir(parents=True)
        for i in range(good):
            _png(d / "cls" / f"ok{i}.png")
        for i in range(bad):
            (d / "cls" / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    configs = {
        "bad.toml": "[strategy\nname = 'darts'", "bad.json": '{"space": ', "list.json": "[1, 2]",
        "bad.yaml": "space: [nb201\n", "unknown.toml": 'spcae = "nb201"\n', "noname.toml": "[strategy]\nepochs = 3\n",
        "sec.toml": "space = 3\n", "types.toml": '[strategy]\nname = "darts"\nepochs = "abc"\n',
        "img.toml": "[run]\nimg_size = 0\n", "runkey.toml": "[run]\nsede = 1\n", "name3.toml": "[space]\nname = 3\n",
        "nan.toml": "[strategy]\nname = 'darts'\nw_lr = nan\n", "inf.toml": "[strategy]\nname = 'darts'\nepochs = inf\n",
        "bool.toml": "[strategy]\nname = 'darts'\nunrolled = 'yes'\n", "cfg.txt": "space = 'nb201'\n",
        "betas.yaml": "strategy:\n  name: darts\n  a_betas: 0.5\n", "dev.toml": "[run]\ndevice = 'tpu'\n",
        "empty_rd.toml": "[run]\nrun_dir = ''\n",
    }
    for name, text in configs.items():
        (w / name).write_text(text)
    (w / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    (w / "dir.toml").mkdir()
    lock = RunLock(w / "locked")  # another run holds this directory while the cases run
    lock.acquire()
    yield w
    lock.release()


# (id, command line, what the message must name); {w} is the world directory
CASES = [
    # -- option values of the strategy (darts), checked against its declared types and ranges
    ("epochs-abc", f"{S} --set epochs=abc", "'epochs'"),
    ("epochs-float", f"{S} --set epochs=1.5", "'epochs'"),
    ("epochs-true", f"{S} --set epochs=true", "'epochs'"),
    ("epochs-inf", f"{S} --set epochs=Infinity", "'epochs'"),
    ("epochs-nan", f"{S} --set epochs=NaN", "'epochs'"),
    ("epochs-zero", f"{S} --set epochs=0", "epochs"),
    ("epochs-negative", f"{S} --set strategy.epochs=-3", "epochs"),
    ("epochs-list", f"{S} --set epochs=[1,2]", "'epochs'"),
    ("epochs-dict", f"{S} --set 'epochs={{}}'", "'epochs'"),
    ("epochs-flag-abc", f"{S} --epochs abc", "--epochs"),
    ("epochs-flag-float", f"{S} --epochs 1.5", "--epochs"),
    ("w_lr-negative", f"{S} --set w_lr=-1", "'w_lr'"),
    ("w_lr-zero", f"{S} --set strategy.w_lr=0", "'w_lr'"),
    ("w_lr-text", f"{S} --set w_lr=fast", "'w_lr'"),
    ("w_lr-nan", f"{S} --set w_lr=NaN", "'w_lr'"),
    ("a_lr-inf", f"{S} --set a_lr=Infinity", "'a_lr'"),
    ("a_lr-negative", f"{S} --set a_lr=-0.001", "'a_lr'"),
    ("w_lr_min-negative", f"{S} --set w_lr_min=-1", "'w_lr_min'"),
    ("a_betas-scalar", f"{S} --set a_betas=0.5", "'a_betas'"),
    ("a_betas-one", f"{S} --set a_betas=[0.5]", "'a_betas'"),
    ("a_betas-range", f"{S} --set a_betas=[0.5,2]", "'a_betas'"),
    ("a_betas-text", f"{S} --set a_betas=[a,b]", "'a_betas'"),
    ("a_betas-three", f"{S} --set a_betas=[0.1,0.2,0.3]", "'a_betas'"),
    ("batch_size-zero", f"{S} --set batch_size=0", "'batch_size'"),
    ("batch_size-negative", f"{S} --set batch_size=-8", "'batch_size'"),
    ("batch_size-float", f"{S} --set batch_size=2.5", "'batch_size'"),
    ("unrolled-text", f"{S} --set unrolled=yes", "'unrolled'"),
    ("unrolled-int", f"{S} --set unrolled=1", "'unrolled'"),
    ("val_fraction-zero", f"{S} --set val_fraction=0", "'val_fraction'"),
    ("val_fraction-one", f"{S} --set val_fraction=1", "'val_fraction'"),
    ("val_fraction-big", f"{S} --set val_fraction=1.5", "'val_fraction'"),
    ("w_weight_decay-negative", f"{S} --set w_weight_decay=-1", "'w_weight_decay'"),
    ("w_momentum-negative", f"{S} --set w_momentum=-0.1", "'w_momentum'"),
    ("grad_clip-zero", f"{S} --set grad_clip=0", "'grad_clip'"),
    ("steps_per_epoch-zero", f"{S} --set steps_per_epoch=0", "'steps_per_epoch'"),
    ("max_skips-zero", f"{S} --set max_skips=0", "max_skips"),
    ("skip_ops-string", f"{S} --set skip_ops=skip_connect", "'skip_ops'"),
    ("skip_ops-ints", f"{S} --set skip_ops=[1,2]", "'skip_ops'"),
    ("supernet-int", f"{S} --set supernet=3", "'supernet'"),
    ("warmup-negative", f"{S} --set warmup_epochs=-1", "'warmup_epochs'"),
    ("warmup-too-long", f"{S} --set warmup_epochs=60", "warmup_epochs"),
    ("unroll_eps-nan", f"{S} --set unroll_eps=NaN", "'unroll_eps'"),
    ("unknown-option", f"{S} --set epochz=3", "'epochz'"),
    ("unknown-strategy-option", f"{S} --set strategy.epochz=3", "'epochz'"),
    # -- other components: space, objective, evolution, random
    ("channels-text", f"{S} --set space.channels=wide", "'channels'"),
    ("channels-zero", f"{S} --set space.channels=0", "'channels'"),
    ("num_cells-float", f"{S} --set space.num_cells=1.5", "'num_cells'"),
    ("space-bool", f"{S} --set space.channels=true", "'channels'"),
    ("space-unknown-option", f"{S} --set space.chanels=4", "'chanels'"),
    ("mask_ratio-big", f"{S} --set objective.mask_ratio=1.5", "'mask_ratio'"),
    ("mask_ratio-zero", f"{S} --set mask_ratio=0", "'mask_ratio'"),
    ("mask_ratio-text", f"{S} --set mask_ratio=half", "'mask_ratio'"),
    ("decoder-int", f"{S} --set objective.decoder=3", "'decoder'"),
    ("population-zero", f"search {TINY} --strategy evolution --set population=0 --run-dir {{w}}/new", "'population'"),
    ("generations-text", f"search {TINY} --strategy evolution --set generations=many --run-dir {{w}}/new", "'generations'"),
    ("mutation_prob-big", f"search {TINY} --strategy evolution --set mutation_prob=2 --run-dir {{w}}/new", "'mutation_prob'"),
    ("aging-text", f"search {TINY} --strategy evolution --set aging=maybe --run-dir {{w}}/new", "'aging'"),
    ("evolution-lr-negative", f"search {TINY} --strategy evolution --set lr=-0.1 --run-dir {{w}}/new", "'lr'"),
    ("max_params-negative", f"search {TINY} --strategy evolution --set max_params=-1 --run-dir {{w}}/new", "'max_params'"),
    ("budget-zero", f"search {TINY} --strategy random --set budget=0 --run-dir {{w}}/new", "'budget'"),
    # -- run options
    ("img_size-zero", f"{S} --img-size 0", "'img_size'"),
    ("img_size-small", f"{S} --set img_size=4", "'img_size'"),
    ("img_size-text", f"{S} --set img_size=big", "'img_size'"),
    ("img_size-flag-text", f"{S} --img-size big", "--img-size"),
    ("img_size-mismatch", f"{S} --img-size 64", "img_size"),
    ("limit-zero", f"{S} --limit 0", "'limit'"),
    ("limit-negative", f"{S} --set limit=-5", "'limit'"),
    ("limit-text", f"{S} --set run.limit=all", "'limit'"),
    ("seed-text", f"{S} --seed abc", "--seed"),
    ("seed-set-text", f"{S} --set seed=abc", "'seed'"),
    ("seed-float", f"{S} --set seed=1.5", "'seed'"),
    ("seed-bool", f"{S} --set run.seed=true", "'seed'"),
    ("seed-huge", f"{S} --set seed=100000000000000000000000", "'seed'"),
    ("device-tpu", f"{S} --device tpu", "device"),
    ("device-garbage", f"{S} --device cuda:abc", "device"),
    ("device-int", f"{S} --set device=3", "device"),
    ("precision-flag", f"{S} --precision fp16", "--precision"),
    ("precision-set", f"{S} --set precision=fp16", "'precision'"),
    ("labels-text", f"{S} --set labels=maybe", "'labels'"),
    ("deterministic-int", f"{S} --set deterministic=2", "'deterministic'"),
    ("pictures-text", f"{S} --set pictures=no", "'pictures'"),
    ("trackers-unknown", f"{S} --track wandb", "wandb"),
    ("trackers-int", f"{S} --set trackers=3", "'trackers'"),
    ("run_dir-empty", f"search {TINY} --set run.run_dir=", "run_dir"),
    ("run_dir-empty-flag", f"search {TINY} --run-dir ''", "run_dir"),
    ("run_dir-int", f"search {TINY} --set run_dir=3", "run_dir"),
    ("data-empty", f"{S} --data ''", "data"),
    # -- --set syntax
    ("set-no-equals", f"{S} --set epochs", "--set"),
    ("set-empty-key", f"{S} --set =3", "--set"),
    ("set-bad-section", f"{S} --set strat.epochs=3", "'strat'"),
    ("set-empty-option", f"{S} --set strategy.=3", "strategy."),
    ("set-unknown-run-option", f"{S} --set run.sed=1", "'sed'"),
    ("set-run-section", f"{S} --set run=3", "'run'"),
    ("set-space-conflict", f"{S} --set space=vit", "space"),
    ("set-strategy-conflict", f"search {TINY} --strategy darts --set strategy.name=evolution --run-dir {{w}}/new", "strategy"),
    ("set-space-number", f"search --set space=3 --run-dir {{w}}/new", "space"),
    ("set-objective-empty", f"{S} --set objective.name=", "objective"),
    # -- component names and combinations
    ("space-unknown", f"search --space nb210 --run-dir {{w}}/new", "'nb210'"),
    ("space-empty", f"search --space '' --strategy darts --run-dir {{w}}/new", "space"),
    ("objective-unknown", f"{S} --objective mimm", "'mimm'"),
    ("strategy-unknown", f"{S} --strategy dartz", "'dartz'"),
    ("proxy-unknown", f"search {TINY} --strategy random --proxy synflw --run-dir {{w}}/new", "'synflw'"),
    ("darts-on-vit", f"search --space vit --strategy darts --run-dir {{w}}/new", "'vit'"),
    ("supervised-without-labels", f"{S} --objective supervised", "'supervised'"),
    ("darts-with-proxy", f"search {TINY} --strategy darts --proxy synflow --run-dir {{w}}/new", "'darts'"),
    ("darts-objective-and-proxy", f"{S} --objective mim --proxy synflow", "'synflow'"),
    ("evolution-objective-and-dataless-proxy", f"search {TINY} --strategy evolution --objective mim --proxy synflow --run-dir {{w}}/new", "'mim'"),
    ("gradient-ascent-with-objective", f"search {TINY} --strategy gradient_ascent --objective mim --run-dir {{w}}/new", "'gradient_ascent'"),
    ("labels-on-photos", f"{S} --labels --data photos", "photos"),
    # -- data
    ("data-missing", f"{S} --data {{w}}/no-such-folder", "no-such-folder"),
    ("data-file", f"{S} --data {{w}}/afile", "afile"),
    ("data-empty-folder", f"{S} --data {{w}}/imgs_empty", "imgs_empty"),
    ("data-corrupt-image", f"{S} --data {{w}}/imgs_mixed", "broken0.jpg"),
    ("data-all-corrupt-skipped", f"{S} --data {{w}}/imgs_bad --skip-corrupt", "broken1.jpg"),
    ("data-unknown-dataset", f"{S} --data torchvision:foo", "torchvision:foo"),
    # -- config files
    ("config-missing", f"search --config {{w}}/nope.toml", "nope.toml"),
    ("config-bad-toml", "search --config {w}/bad.toml", "bad.toml"),
    ("config-bad-json", "search --config {w}/bad.json", "bad.json"),
    ("config-json-list", "search --config {w}/list.json", "list.json"),
    ("config-bad-yaml", "search --config {w}/bad.yaml", "bad.yaml"),
    ("config-unknown-key", "search --config {w}/unknown.toml", "'spcae'"),
    ("config-section-without-name", "search --config {w}/noname.toml", "[strategy]"),
    ("config-section-not-table", "search --config {w}/sec.toml --run-dir {w}/new", "space"),
    ("config-wrong-type", "search --config {w}/types.toml --run-dir {w}/new", "'epochs'"),
    ("config-run-img_size", "search --config {w}/img.toml --run-dir {w}/new", "'img_size'"),
    ("config-unknown-run-key", "search --config {w}/runkey.toml", "sede"),
    ("config-name-number", "search --config {w}/name3.toml --run-dir {w}/new", "space"),
    ("config-nan", "search --config {w}/nan.toml --run-dir {w}/new", "'w_lr'"),
    ("config-inf-epochs", "search --config {w}/inf.toml --run-dir {w}/new", "'epochs'"),
    ("config-bool-text", "search --config {w}/bool.toml --run-dir {w}/new", "'unrolled'"),
    ("config-txt", "search --config {w}/cfg.txt", "cfg.txt"),
    ("config-yaml-betas", "search --config {w}/betas.yaml --run-dir {w}/new", "'a_betas'"),
    ("config-device", "search --config {w}/dev.toml --run-dir {w}/new", "device"),
    ("config-empty-run-dir", "search --config {w}/empty_rd.toml", "run_dir"),
    ("config-binary", "search --config {w}/binary.toml", "binary.toml"),
    ("config-directory", "search --config {w}/dir.toml", "dir.toml"),
    # -- run directories
    ("run-dir-not-empty", f"search {TINY} --run-dir {{w}}/full", "full"),
    ("run-dir-leftovers", f"search {TINY} --run-dir {{w}}/left", "left"),
    ("run-dir-holds-run", f"search {TINY} --run-dir {{w}}/held", "--resume"),
    ("run-dir-is-file", f"search {TINY} --run-dir {{w}}/afile", "afile"),
    ("run-dir-below-file", f"search {TINY} --run-dir {{w}}/afile/sub", "afile"),
    ("resume-missing", "search --resume {w}/no-such-run", "no-such-run"),
    ("resume-not-a-run", "search --resume {w}/full", "config.json"),
    ("resume-is-file", "search --resume {w}/afile", "afile"),
    ("resume-bad-config", "search --resume {w}/cfg_bad", "cfg_bad/config.json"),
    ("resume-config-list", "search --resume {w}/cfg_list", "cfg_list/config.json"),
    ("resume-config-binary", "search --resume {w}/cfg_binary", "cfg_binary/config.json"),
    ("resume-config-no-names", "search --resume {w}/cfg_noname", "cfg_noname"),
    ("resume-changed-epochs", "search --resume {w}/valid --epochs 3", "--epochs"),
    ("resume-changed-set", "search --resume {w}/valid --set w_lr=1", "--set"),
    ("resume-changed-space", "search --resume {w}/valid --space darts", "--space"),
    ("resume-bad-checkpoint", "search --resume {w}/valid --no-progress", "checkpoint.pt"),
    ("resume-locked", "search --resume {w}/locked --no-progress", "is in use by another nas run"),
    ("resume-symlink", "search --resume {w}/linked --no-progress", "history.jsonl"),
    # -- nas show
    ("show-missing", "show {w}/no-such-run", "no-such-run"),
    ("show-unfinished", "show {w}/full", "result.json"),
    ("show-bad-result", "show {w}/res_bad", "res_bad/result.json"),
    ("show-result-list", "show {w}/res_list", "res_list/result.json"),
    ("show-result-no-best", "show {w}/res_nobest", "'best'"),
    ("show-bad-arch", "show {w}/res_badarch", "garbage-arch"),
    ("show-unknown-space", "show {w}/res_space", "'nb210'"),
    ("show-bad-space-config", "show {w}/res_cfg", "'channels'"),
    ("show-space-config-list", "show {w}/res_cfglist", "space_config"),
    ("show-bad-candidates", "show {w}/res_cands", "res_cands/result.json"),
    ("show-symlink", "show {w}/shown", "cells.png"),
    ("show-missing-table", "show {w}/valid --table {w}/nope.json", "nope.json"),
    # -- nas train
    ("train-missing-target", "train {w}/no-such-run", "no-such-run"),
    ("train-bad-result", "train {w}/res_bad --no-progress", "res_bad/result.json"),
    ("train-result-list", "train {w}/res_list --no-progress", "res_list/result.json"),
    ("train-unfinished", "train {w}/full --no-progress", "result.json"),
    ("train-bad-arch", "train 'garbage|' --space nb201 --no-progress", "garbage|"),
    ("train-unknown-space", f"train '{NB201}' --space nb210", "'nb210'"),
    ("train-epochs-zero", f"{T} --epochs 0", "'epochs'"),
    ("train-lr-negative", f"{T} --lr -1", "'lr'"),
    ("train-lr-nan", f"{T} --lr nan", "'lr'"),
    ("train-lr-inf", f"{T} --lr inf", "'lr'"),
    ("train-batch-size-zero", f"{T} --batch-size 0", "'batch_size'"),
    ("train-val-fraction-zero", f"{T} --val-fraction 0", "'val_fraction'"),
    ("train-val-fraction-big", f"{T} --val-fraction 1.5", "'val_fraction'"),
    ("train-weight-decay-negative", f"{T} --weight-decay -1", "'weight_decay'"),
    ("train-img-size-zero", f"{T} --img-size 0", "'img_size'"),
    ("train-limit-zero", f"{T} --limit 0", "'limit'"),
    ("train-space-option-text", f"{T} --space-option channels=wide", "'channels'"),
    ("train-space-option-unknown", f"{T} --space-option chanels=4", "'chanels'"),
    ("train-space-option-syntax", f"{T} --space-option channels", "--space-option"),
    ("train-device", f"{T} --device tpu", "device"),
    ("train-photos-have-no-labels", f"{T} --data photos", "photos"),
    ("train-corrupt-image", f"{T} --data {{w}}/imgs_mixed", "broken0.jpg"),
    ("train-out-not-empty", f"train '{NB201}' --space nb201 --out {{w}}/full", "full"),
    ("train-out-file", f"train '{NB201}' --space nb201 --out {{w}}/afile", "afile"),
    ("train-inherit-without-checkpoint", "train {w}/shown --inherit --out {w}/tout2", "--inherit"),
    ("train-resume-nothing", f"{T} --resume", "checkpoint.pt"),
    # -- commands and flags
    ("unknown-command", "serch", "serch"),
    ("unknown-flag", f"{S} --epocs 3", "--epocs"),
    ("plugins-unknown-flag", "plugins --bogus", "--bogus"),
    ("bench-wrong-dataset", f"bench '{NB201}' --dataset cifar100", "not cifar100"),
    ("bench-bad-edge", "bench '|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|conv_9x9~2|'", "conv_9x9"),
    ("bench-missing-table", f"bench '{NB201}' --table {{w}}/nope.json", "nope.json"),
    ("bench-bad-table", f"bench '{NB201}' --table {{w}}/afile", "afile"),
]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return rc, out + err


@pytest.fixture
def no_compute(monkeypatch):
    """A training step anywhere fails the case: bad input must be refused before any compute."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("compute started: the bad input was not refused up front")

    monkeypatch.setattr(RunContext, "check_finite", refuse)


def test_the_table_is_large_and_has_unique_ids():
    ids = [c[0] for c in CASES]
    assert len(CASES) >= 100 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_and_names_the_culprit(world, capsys, no_compute, argv, expected):
    rc, text = run_cli([a.replace("{w}", str(world)) for a in shlex.split(argv)], capsys)
    assert "Traceback" not in text and "internal error" not in text, text
    assert rc == 2, text
    assert expected.replace("{w}", str(world)) in text, text
    assert not (world / "new").exists() and not (world / "tout").exists(), "a refused command must not create its directory"


# -- property-based: any --set value, any architecture string -------------------------------------------------
KEYS = ["epochs", "w_lr", "a_lr", "a_betas", "batch_size", "strategy.unrolled", "strategy.val_fraction",
        "strategy.grad_clip", "strategy.warmup_epochs", "strategy.max_skips", "strategy.skip_ops", "strategy.w_momentum",
        "strategy.steps_per_epoch", "space.channels", "space.num_cells", "objective.mask_ratio", "objective.patch_size",
        "seed", "limit", "img_size", "precision", "device", "run.deterministic", "run.pictures", "run.skip_corrupt"]
TOKENS = ["", "0", "-1", "1", "2", "32", "1.5", "0.5", "-0.5", "1e309", "-1e309", "true", "false", "null", "none", "NaN",
          "Infinity", "-Infinity", "[]", "[1]", "[0.5,0.9]", "[0.5, 2]", "[a,b]", "{}", '{"a": 1}', "cpu", "cuda", "abc",
          "[", "]", '"', "'", "1,2", "0x10", "1_000", "٣", "\x00"]
VALUES = st.one_of(
    st.sampled_from(TOKENS),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.one_of(st.integers(-3, 3), st.floats(-2, 2), st.text(string.ascii_lowercase, max_size=3)), max_size=3).map(json.dumps),
    st.text(max_size=12),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_any_set_value_is_accepted_or_named(world, capsys, key, value):
    rc, text = run_cli(["search", *shlex.split(TINY), "--check", "--run-dir", str(world / "new"), "--set", f"{key}={value}"], capsys)
    assert "Traceback" not in text and "internal error" not in text, text
    assert rc in (0, 2), text
    if rc == 2:
        assert key.rpartition(".")[2] in text or "--set" in text, text
    else:
        assert "the configuration is valid" in text


VALID_ARCHS = {
    "nb201": NB201,
    "darts": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
             "('skip_connect', 0), ('dil_conv_3x3', 2), ('skip_connect', 0), ('skip_connect', 1)], normal_concat=[2, 3, 4, 5], "
             "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
             "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
}


@st.composite
def arch_strings(draw):
    space = draw(st.sampled_from(sorted(VALID_ARCHS)))
    text = VALID_ARCHS[space]
    for _ in range(draw(st.integers(0, 4))):  # edit the valid string: delete, insert or replace a slice
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        text = text[:i] + draw(st.sampled_from(["", "|", "~", "+", "~9", "(", ")", "[", "]", ",", "'", "none", "conv",
                                                 "sep_conv_9x9", "-1", "0", "Genotype(", "\n"])) + text[j:]
    if draw(st.booleans()) and draw(st.booleans()):
        text = draw(st.text(max_size=60))
    return space, text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=arch_strings())
def test_any_architecture_string_is_accepted_or_named(world, capsys, case):
    space, text = case
    rc, out = run_cli(["train", "--space", space, "--check", "--limit", "32", "--out", str(world / "tout"), "--no-progress",
                       "--", text], capsys)
    assert "Traceback" not in out and "internal error" not in out, out
    assert rc in (0, 2), out
    if rc == 2:
        assert any(word in out.lower() for word in ("architecture", "genotype", space, "result.json")), out
    else:
        assert "the configuration is valid" in out


# -- hints name flags that exist; defaults blame nothing the user did not give ------------------------------
def test_suggested_flags_exist(world, capsys, no_compute, monkeypatch):
    monkeypatch.setenv("NAS_DATA_ROOT", str(world / "no-datasets-here"))
    rc, text = run_cli(shlex.split(f"search {TINY} --data cifar10 --run-dir {world / 'new'}"), capsys)
    assert rc == 2 and "cifar10" in text and "--download" in text, text
    rc, text = run_cli(shlex.split(f"search {TINY} --data {world / 'imgs_mixed'} --run-dir {world / 'new'}"), capsys)
    assert rc == 2 and "--skip-corrupt" in text, text
    for command in ("search", "train"):
        rc, text = run_cli([command, "--help"], capsys)
        assert rc == 0 and "--skip-corrupt" in text and "--download" in text and "--check" in text
    with pytest.warns(RuntimeWarning, match=r"skipped 1 unreadable image\(s\) of 2 .*cls/broken0.jpg"):
        rc, text = run_cli(shlex.split(f"search {TINY} --data {world / 'imgs_mixed'} --skip-corrupt --check "
                                       f"--run-dir {world / 'new'}"), capsys)
    assert rc == 0 and "1 images" in text, text


def test_a_proxy_driven_strategy_is_not_handed_an_objective(world, capsys):
    rc, text = run_cli(shlex.split(f"search {TINY} --strategy gradient_ascent --check --run-dir {world / 'new'}"), capsys)
    assert rc == 0 and "no evaluator" in text and "objective" not in text, text
