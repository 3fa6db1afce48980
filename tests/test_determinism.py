"""torch's NaN fill of new tensors (on in its deterministic mode) is off in a run: it changes no result, it only
costs time. A DARTS search and the unified proxy's scores are bitwise the same with the fill on and off."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("nas_spaces")
pytest.importorskip("nas_objectives")
pytest.importorskip("nas_proxies")

import nas_core  # noqa: E402
from nas_core import _runtime, create_proxy, create_space  # noqa: E402


@pytest.fixture
def restore_fill():
    before = torch.utils.deterministic.fill_uninitialized_memory
    yield
    torch.utils.deterministic.fill_uninitialized_memory = before


def _darts(seed: int = 0):
    res = nas_core.search(space="nb201", objective="mim", strategy="darts", data="digits", seed=seed, limit=64,
                          channels=4, num_cells=1, epochs=2, batch_size=16, progress=False, run_dir=None, threads=1)
    return res, torch.utils.deterministic.fill_uninitialized_memory


def test_a_run_turns_the_nan_fill_off_and_keeps_deterministic_kernels(restore_fill):
    torch.utils.deterministic.fill_uninitialized_memory = True
    _runtime.seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory is False


def test_darts_search_is_bitwise_the_same_with_and_without_the_fill(monkeypatch, restore_fill):
    fast, fill_fast = _darts()
    monkeypatch.setattr(_runtime, "FILL_UNINITIALIZED_MEMORY", True)
    filled, fill_filled = _darts()
    assert (fill_fast, fill_filled) == (False, True)  # the two runs really differ in the setting
    assert str(fast.best) == str(filled.best)
    assert fast.arch_weights_history == filled.arch_weights_history  # every epoch's weights, exactly
    assert [h["train_loss"] for h in fast.history] == [h["train_loss"] for h in filled.history]


def test_unified_proxy_scores_are_bitwise_the_same_with_and_without_the_fill(monkeypatch, restore_fill):
    space = create_space("nb201", channels=4, num_cells=1)
    arch = space.parse("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")
    g = torch.Generator().manual_seed(0)
    images, targets = torch.rand(8, 3, 16, 16, generator=g), torch.arange(8) % 4

    def components(fill: bool):
        monkeypatch.setattr(_runtime, "FILL_UNINITIALIZED_MEMORY", fill)
        _runtime.seed_everything(1)  # what a run's start does
        assert torch.utils.deterministic.fill_uninitialized_memory is fill
        net = space.build(arch, num_classes=10)
        return create_proxy("unified", preset="weighted").components(net, images, targets)

    assert components(False) == components(True)
