"""The nas-core objective contract on both pyramid kinds, for every name this package registers
(timm-style: a new name without an entry in CONTRACT fails test_every_name_is_covered)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from objectives_helpers import registered_names

from nas_core import create_objective, get_entry
from nas_core.testing import FakeBackbone, check_objective, fake_images

# per-name options for the contract run: constructor options and check_objective settings
CONTRACT = {
    "mim": {},
    "rotation": {},
    "colorization": {},
    # a 24-way permutation task needs more steps than the default 30 to learn on 4 images
    "jigsaw": {"check": {"steps": 200, "lr": 3e-3, "images": lambda: fake_images(16, 16, 0)}},
    # a small module teacher (the default builds a timm ViT, tested in test_distill.py)
    "distill": {"cfg": {"teacher": lambda: FakeBackbone("cnn", chs=8)}},
    "supervised": {},
    "random_labels": {},
}
NAMES = registered_names()


def test_every_name_is_covered():
    assert sorted(CONTRACT) == NAMES


def _cfg(name):
    return {k: (v() if callable(v) else v) for k, v in CONTRACT[name].get("cfg", {}).items()}


def _check(name):
    return {k: (v() if callable(v) else v) for k, v in CONTRACT[name].get("check", {}).items()}


@pytest.mark.parametrize("kind", ["cnn", "vit"])
@pytest.mark.parametrize("name", NAMES)
def test_objective_contract(objectives, name, kind):
    check_objective(lambda: create_objective(name, **_cfg(name)), backbone=FakeBackbone(kind), **_check(name))


@pytest.mark.parametrize("decoder", ["hierarchical", "simple", "transformer"])
@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_mim_decoders_contract(objectives, decoder, kind):
    check_objective(lambda: create_objective("mim", decoder=decoder, decoder_dim=16), backbone=FakeBackbone(kind))


def test_metadata(objectives):
    labelled = {n for n in NAMES if get_entry("objective", n).metadata["requires_labels"]}
    assert labelled == {"supervised", "random_labels"}
    for n in NAMES:
        entry = get_entry("objective", n)
        assert entry.summary and entry.metadata.get("paper")
        assert create_objective(n, **_cfg(n)).requires_labels == (n in labelled)


def test_aliases(objectives):
    assert type(create_objective("mae_nas")).__name__ == "MIM"
    assert type(create_objective("rlnas")).__name__ == "RandomLabels"
    assert type(create_objective("masktas", teacher=FakeBackbone("cnn"))).__name__ == "Distill"


def test_unknown_option_names_valid_ones(objectives):
    with pytest.raises(Exception) as err:
        create_objective("mim", mask_ration=0.5)
    assert "mask_ratio" in str(err.value)


def test_plugin_import_is_light():
    code = "import sys, nas_objectives.plugin, nas_objectives; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
