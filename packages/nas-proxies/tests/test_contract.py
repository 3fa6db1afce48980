"""Every registered proxy passes nas-core's contract suite (finite float, deterministic for a seed,
network left exactly as found, label-free and supervised forms), parametrized over the registry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from nas_core import create_proxy, get_entry, list_proxies
from nas_core.testing import FakeSpace, check_proxy, fake_images

import nas_proxies
from nas_proxies import PROXY_NAMES, score_all

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("name", PROXY_NAMES)
def test_proxy_contract(name, proxies_plugin):
    check_proxy(create_proxy(name))


def _reference_scores(names, n=5):
    space = FakeSpace(channels=4)
    rng = np.random.default_rng(1)
    x = fake_images(8, 16, 3)
    y = torch.arange(8) % 3
    out = {p: [] for p in names}
    for _ in range(n):
        torch.manual_seed(0)
        net = space.build(space.sample(rng), num_classes=10)
        s = score_all(net, x, y, names)
        for p in names:
            out[p].append(s[p])
    return out


@pytest.mark.parametrize("preset", ["weighted", "selected"])
def test_unified_contract(preset, proxies_plugin):
    names = nas_proxies.UnifiedProxy(preset=preset).proxies
    check_proxy(create_proxy("unified", preset=preset, reference=_reference_scores(names)))


def test_registry_lists_every_proxy_with_metadata(proxies_plugin):
    ours = set(PROXY_NAMES) | {"unified"}
    assert ours <= set(list_proxies())
    for name in PROXY_NAMES:
        e = get_entry("proxy", name)
        proxy = create_proxy(name)
        assert e.metadata["higher_is_better"] is True and proxy.higher_is_better is True
        assert e.metadata["needs_targets"] is False and proxy.needs_targets is False
        assert e.metadata["data_free"] is proxy.data_free, name
        assert e.metadata["needs_loss"] is proxy.needs_loss, name
        assert e.metadata["paper"] and e.summary
        assert proxy.registered_name == name
    assert {p for p in PROXY_NAMES if get_entry("proxy", p).metadata["data_free"]} == nas_proxies.DATA_FREE_PROXIES
    assert {p for p in PROXY_NAMES if get_entry("proxy", p).metadata["needs_loss"]} == nas_proxies.LOSS_PROXIES
    assert create_proxy("jacob_cov").registered_name in ("jacov", "jacob_cov")


def test_readme_has_a_row_per_registered_name(proxies_plugin):
    text = README.read_text()
    for name in [*PROXY_NAMES, "unified"]:
        assert re.search(rf"^\|\s*`{name}`\s*\|", text, re.M), f"README lacks a table row for {name}"


def test_unknown_options_are_config_errors(proxies_plugin):
    from nas_core import ConfigError

    with pytest.raises(ConfigError, match="mixup_gama.*Did you mean 'mixup_gamma'"):
        create_proxy("zen", mixup_gama=0.1)
    with pytest.raises(ConfigError, match="bn must be"):
        create_proxy("synflow", bn="frozen")


def test_loading_the_plugin_does_not_import_torch():
    code = "import sys, nas_proxies.plugin, nas_proxies; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
