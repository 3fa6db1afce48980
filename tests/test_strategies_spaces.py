"""nas-strategies on the real spaces of nas-spaces (tiny settings): DARTS on the NB201 and DARTS supernets
(first and second order), SPOS + evolution on the ViT supernet with MaskTAS' depth/block mutation under a
parameter budget, UP-NAS with proxies computed on freshly built NB201 networks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nas_spaces")

from nas_core import NasPluginManager, RunContext, TensorImages, create_space, create_strategy  # noqa: E402
from nas_core.testing import FakeObjective, FakeProxy, fake_images  # noqa: E402


def _ctx(seed=0):
    return RunContext(device="cpu", seed=seed, progress=False, distributed=False, plugin_manager=NasPluginManager(autoload=False))


@pytest.mark.parametrize("name", ["darts", "darts_2nd"])
def test_darts_on_the_nb201_supernet(name):
    space = create_space("nb201", channels=4, num_cells=1)
    data = TensorImages(fake_images(32, 16, 0))
    res = create_strategy(name, epochs=2, batch_size=4, steps_per_epoch=2).run(space, FakeObjective(), data, _ctx())
    assert space.parse(str(res.best)) == res.best
    assert len(res.arch_weights_history) == 2
    w0 = np.array(res.arch_weights_history[0]["cell"])
    w1 = np.array(res.arch_weights["cell"])
    assert w1.shape == (6, 5) and not np.allclose(w0, w1)
    assert res.extra["op_names"]["cell"] == ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


@pytest.mark.parametrize("partial", [1, 2], ids=["darts", "pc_darts"])
def test_darts_on_the_darts_space_counts_skips_in_the_normal_cell(partial):
    space = create_space("darts")
    sn_opts = {"channels": 4, "layers": 3, "partial_channels": partial}
    data = TensorImages(fake_images(16, 16, 0))
    res = create_strategy("darts", epochs=1, batch_size=4, steps_per_epoch=1, supernet=sn_opts).run(
        space, FakeObjective(), data, _ctx())
    assert space.parse(str(res.best)) == res.best
    assert res.extra["skips"] == sum(op == "skip_connect" for op, _ in res.best.normal)


def test_evolution_on_the_vit_space_with_depth_and_block_mutation_under_a_budget():
    space = create_space("vit")
    rng = np.random.default_rng(0)
    limit = sorted(space.cost(space.sample(rng)).params for _ in range(40))[20]
    depths = set()
    for seed in range(2):
        res = create_strategy("evolution", population=6, generations=3, parents=3, mutation_prob=0.3,
                              depth_mutation_prob=0.5, max_params=limit).run(
            space, FakeProxy(), TensorImages(fake_images(4, 32, 0)), _ctx(seed))
        assert len(res.candidates) == 18
        assert all(space.cost(c.arch).params <= limit for c in res.candidates)
        depths |= {c.arch.depth for c in res.candidates}
    assert len(depths) >= 2


def test_gradient_ascent_with_proxies_computed_on_nb201_networks(tmp_path):
    space = create_space("nb201", channels=4, num_cells=1)
    data = TensorImages(fake_images(8, 16, 0))
    opts = dict(num_samples=24, pretrain_samples=100, vgae_epochs=3, mpe_epochs=5, mpe_batch_size=8, num_starts=3,
                max_steps=100, rescore_top=3, cache_dir=str(tmp_path))
    res = create_strategy("gradient_ascent", **opts).run(space, FakeProxy(), data, _ctx())
    assert res.extra["source"] == "proxies" and res.proxy is not None
    for c in res.candidates:
        assert space.parse(str(c.arch)) == c.arch
        params = sum(p.numel() for p in space.build(c.arch, num_classes=10).parameters()) / 1e6
        assert c.scores[res.extra["proxies"][0]] == pytest.approx(params)
    assert list(tmp_path.glob("*.json"))
