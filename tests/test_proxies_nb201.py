"""nas-proxies on the real NAS-Bench-201 networks of nas-spaces, against the published
NAS-Bench-Suite-Zero scores in ../shared/data (sampled here; all 1104 in bench/bench_proxies.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

pytest.importorskip("nas_spaces")
pytest.importorskip("nas_proxies")

from nas_core import BenchmarkTable, create_proxy, create_space  # noqa: E402
from nas_core.testing import assert_module_unchanged, check_proxy, snapshot_module  # noqa: E402

import nas_proxies  # noqa: E402

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def table(shared_data):
    return BenchmarkTable.load(shared_data / "nb201_cifar10.json")


def _sample(table, n, seed):
    archs = table.archs()
    idx = np.random.default_rng(seed).choice(len(archs), n, replace=False)
    return [archs[int(i)] for i in idx]


def test_params_equal_the_published_values(table):
    space = create_space("nb201")  # C=16, N=5, 10 classes: the benchmark's networks
    proxy = create_proxy("params")
    x = torch.rand(2, 3, 32, 32)
    for arch in _sample(table, 40, 0):
        net = space.build(space.parse(arch), num_classes=10)
        assert proxy.score(net, x) == pytest.approx(table.row(arch).proxies["params"], abs=5e-7), arch


def test_flops_and_synflow_rank_like_the_published_scores(table):
    space = create_space("nb201")
    x = torch.rand(2, 3, 32, 32)
    ours = {"flops": [], "synflow": []}
    published = {"flops": [], "synflow": []}
    for arch in _sample(table, 40, 1):
        torch.manual_seed(0)
        net = space.build(space.parse(arch), num_classes=10)
        s = nas_proxies.score_all(net, x, None, ["flops", "synflow"], errors="skip")
        pub = table.row(arch).proxies
        if "synflow" in s.errors:  # no synaptic flow reaches the output: published as exactly 0
            assert pub.get("synflow") == 0.0, (arch, s.errors)
        for p in ours:
            ours[p].append(s.get(p, np.nan))
            published[p].append(pub.get(p, np.nan))
    for p in ours:
        a, b = np.array(ours[p]), np.array(published[p])
        ok = np.isfinite(a) & np.isfinite(b)
        assert ok.sum() >= 35
        rho = spearmanr(a[ok], b[ok]).statistic
        assert rho >= 0.95, (p, rho)


@pytest.mark.parametrize("name", nas_proxies.PROXY_NAMES)
def test_every_proxy_honours_the_contract_on_an_nb201_network(name):
    space = create_space("nb201", channels=4, num_cells=1)
    check_proxy(create_proxy(name), space=space, arch=space.parse(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    ), img_size=16, batch=8)


def test_score_all_on_nb201_leaves_the_network_as_found_and_matches_single_proxies():
    space = create_space("nb201", channels=4, num_cells=1)
    arch = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    torch.manual_seed(0)
    net = space.build(arch, num_classes=10)
    x, y = torch.rand(8, 3, 16, 16), torch.arange(8) % 4
    before = snapshot_module(net)
    together = nas_proxies.score_all(net, x, y)
    assert_module_unchanged(before, net, "score_all")
    for name in nas_proxies.PROXY_NAMES:
        assert create_proxy(name).score(net, x, y) == pytest.approx(together[name], rel=1e-6, abs=1e-9), name
