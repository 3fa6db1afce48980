"""NAS-Bench-201: published params/FLOPs, string round trips, networks and the supernet."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from nas_core import ArchitectureError, ConfigError
from nas_spaces._common import count_macs, count_params
from nas_spaces._nb201 import NB201_EDGES, NB201_OPS, NB201Arch, NB201Network, NB201Space, NB201Supernet, nb201_cost

GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def _rows(shared_data, dataset):
    return json.loads((shared_data / f"nb201_{dataset}.json").read_text())["rows"]


@pytest.mark.parametrize("dataset,num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_params_match_published_for_every_row(shared_data, dataset, num_classes):
    space = NB201Space(num_classes=num_classes)
    rows = _rows(shared_data, dataset)
    assert len(rows) == 1104
    worst = 0.0
    for r in rows:
        published = r["proxies"]["params"] * 1e6
        ours = space.cost(space.parse(r["arch"])).params
        worst = max(worst, abs(ours - published) / published)
    assert worst <= 1e-3, f"largest relative params error {worst:.2e}"


@pytest.mark.parametrize("dataset,num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_flops_rank_like_published(shared_data, dataset, num_classes):
    space = NB201Space(num_classes=num_classes)
    rows = [r for r in _rows(shared_data, dataset) if "flops" in r["proxies"]]
    assert len(rows) > 1000
    ours = [space.cost(space.parse(r["arch"])).flops for r in rows]
    rho = spearmanr(ours, [r["proxies"]["flops"] for r in rows]).statistic
    assert rho >= 0.99, rho
    # The published values additionally count 3 ops per output element of every ReLU-Conv-BN edge
    # (ReLU + BN) and 9 per output element of every 3x3 average pool, in all 5 cells of the 3 stages;
    # what remains is one constant for the whole table (stem/reduction/final-BN extras).
    elems = sum(16 * 2**s * (32 // 2**s) ** 2 for s in range(3)) * 5
    rest = []
    for r, f in zip(rows, ours):
        ops = space.parse(r["arch"]).ops
        n_conv = ops.count("nor_conv_1x1") + ops.count("nor_conv_3x3")
        extra = elems * (3 * n_conv + 9 * ops.count("avg_pool_3x3"))
        rest.append(r["proxies"]["flops"] * 1e6 - f - extra)
    assert np.ptp(rest) < 1.0 and 0 < rest[0] < 0.03 * min(ours)


@pytest.mark.parametrize("cfg", [dict(), dict(channels=4, num_cells=1, num_classes=7, img_size=16), dict(channels=8, num_cells=2, in_chans=1)])
def test_analytic_cost_equals_built_network(cfg):
    space = NB201Space(**cfg)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(4)] + [space.parse(GOOD), NB201Arch(("none",) * 6)]
    for a in archs:
        net = space.build(a, num_classes=space.num_classes)
        assert space.cost(a).params == count_params(net)
        x = torch.zeros(1, space.in_chans, space.img_size, space.img_size)
        assert space.cost(a).flops == count_macs(net, x)
        feats = space.build(a).forward_features(x)
        assert count_params(space.build(a)) == nb201_cost(a, space.channels, space.num_cells, None, space.in_chans)[0]
        assert [f.shape[1] for f in feats] == [space.channels, 2 * space.channels, 4 * space.channels]


def test_all_15625_strings_round_trip_and_are_distinct():
    space = NB201Space()
    strings = set()
    for a in space.enumerate():
        s = str(a)
        assert NB201Arch.parse(s) == a
        strings.add(s)
    assert len(strings) == 15625 == len(space)
    adj, ops = space.encode(space.parse(GOOD))
    assert adj.shape == (8, 8) and ops.shape == (8, 7)


def test_official_string_layout():
    a = NB201Arch.parse(GOOD)
    assert a.ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert a.nodes()[2] == (("skip_connect", 0), ("nor_conv_3x3", 1), ("skip_connect", 2))
    assert str(a) == GOOD


@pytest.mark.parametrize(
    "text,needle",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
         "edge 2 (node 2 <- node 1): unknown op 'conv_3x3'; valid: none, skip_connect"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~2|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
         "edge 2 (node 2 <- node 1): input '~2'"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2 has 1 input(s)"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "2 node group(s)"),
        ("|nor_conv_3x3~0|+nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|", "node 2 part"),
        ("|nor_conv_3x3|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|", "edge 0 (node 1 <- node 0)"),
        ("", "empty"),
    ],
)
def test_malformed_strings_point_at_the_bad_part(text, needle):
    with pytest.raises(ArchitectureError, match=None) as info:
        NB201Arch.parse(text)
    assert needle in str(info.value), str(info.value)


def test_decode_rejects_invalid_graphs():
    space = NB201Space()
    adj, ops = space.encode(space.parse(GOOD))
    assert space.decode(adj, ops) == space.parse(GOOD)
    bad_adj = adj.copy()
    bad_adj[0, 7] = 1
    assert space.decode(bad_adj, ops) is None
    swapped = ops.copy()
    swapped[[0, 3]] = swapped[[3, 0]]  # input label moved into the cell
    assert space.decode(adj, swapped) is None
    two_hot = ops.copy()
    two_hot[2, 1] = 1
    assert space.decode(adj, two_hot) is None


def test_mutate_changes_one_edge_and_crossover_mixes_parents():
    space = NB201Space()
    rng = np.random.default_rng(3)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(20):
        m = space.mutate(a, rng)
        assert sum(x != y for x, y in zip(a.ops, m.ops)) == 1
        c = space.crossover(a, b, rng)
        assert all(o in (x, y) for o, x, y in zip(c.ops, a.ops, b.ops))


def test_config_errors_name_the_option():
    with pytest.raises(ConfigError, match="channels"):
        NB201Space(channels=0)
    with pytest.raises(ConfigError, match="img_size"):
        NB201Space(img_size=30)
    with pytest.raises(ConfigError, match="partial_channel.*valid: channels"):
        NB201Space().supernet(partial_channel=4)


# -- supernet -------------------------------------------------------------------------------------


def _naive_cell(cell, x, w):
    """The DARTS mixed cell written the straightforward way (one op at a time, as the benchmark does)."""
    c = cell.c
    nodes = [x]
    for i in (1, 2, 3):
        acc = 0
        for e, (t, j) in enumerate(NB201_EDGES):
            if t != i:
                continue
            src = [k for k in range(3) if e in {0: (0, 1, 3), 1: (2, 4), 2: (5,)}[k]][0]
            slot = {0: (0, 1, 3), 1: (2, 4), 2: (5,)}[src].index(e)
            sl = slice(slot * c, (slot + 1) * c)
            h = nodes[j]
            outs = {
                "none": torch.zeros_like(h),
                "skip_connect": h,
                "nor_conv_1x1": F.batch_norm(F.conv2d(F.relu(h), cell.src[src].conv1.weight[sl]), None, None, training=True),
                "nor_conv_3x3": F.batch_norm(F.conv2d(F.relu(h), cell.src[src].conv3.weight[sl], padding=1), None, None, training=True),
                "avg_pool_3x3": F.avg_pool2d(h, 3, 1, 1, count_include_pad=False),
            }
            acc = acc + sum(w[e, k] * outs[op] for k, op in enumerate(NB201_OPS))
        nodes.append(acc)
    return nodes[3]


def test_fused_mixed_cell_equals_the_naive_darts_cell():
    torch.manual_seed(0)
    sn = NB201Supernet(channels=4, num_cells=1)
    cell = sn.cells[0]
    x = torch.randn(3, 4, 8, 8)
    w = F.softmax(torch.randn(6, 5), -1)
    assert torch.allclose(cell(x, w), _naive_cell(cell, x, w), atol=1e-5)
    # one-hot weights reduce the mixture to the single path
    a = NB201Space().sample(np.random.default_rng(1))
    onehot = torch.zeros(6, 5)
    onehot[range(6), [NB201_OPS.index(o) for o in a.ops]] = 1
    assert torch.allclose(cell(x, onehot), cell.forward_path(x, a), atol=1e-5)


def test_none_weight_gets_a_gradient_and_discretize_takes_argmax():
    torch.manual_seed(0)
    sn = NB201Supernet(channels=4, num_cells=1)
    x = torch.randn(2, 3, 8, 8)
    sum(f.square().mean() for f in sn(x)).backward()
    g = sn.alphas.grad
    assert g is not None and torch.all(g[:, NB201_OPS.index("none")] != 0)
    with torch.no_grad():
        sn.alphas.zero_()
        for e, op in enumerate(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none")):
            sn.alphas[e, NB201_OPS.index(op)] = 1.0
    sn.discretize_none = True  # the benchmark's rule: none competes
    assert str(sn.discretize()) == "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    sn.discretize_none = False  # DARTS' rule (default): the strongest op other than none
    with torch.no_grad():
        sn.alphas[1, NB201_OPS.index("avg_pool_3x3")] = 0.5
        sn.alphas[5, NB201_OPS.index("skip_connect")] = 0.25
    assert str(sn.discretize()) == "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    assert sn.arch_weights()["cell"].shape == (6, 5)
    assert sn.op_names()["cell"] == list(NB201_OPS)
    assert {id(p) for p in sn.weight_parameters()}.isdisjoint({id(sn.alphas)})


def test_supernet_path_equals_extracted_network():
    torch.manual_seed(0)
    space = NB201Space(channels=4, num_cells=2)
    sn = space.supernet()
    rng = np.random.default_rng(0)
    x = torch.randn(4, 3, 16, 16)
    for _ in range(3):
        a = space.sample(rng)
        net = sn.extract(a)
        assert isinstance(net, NB201Network) and net.arch == a
        sn.train(), net.train()
        ref = sn(x, arch=a)
        got = net(x)
        for u, v in zip(ref, got):  # the supernet runs channels-last on the CPU, the network NCHW: equal to rounding
            assert (u - v).abs().max() <= 1e-5 * (1 + u.abs().max())
        assert count_params(net) == nb201_cost(a, 4, 2, None)[0]


def test_single_path_training_updates_only_the_path():
    torch.manual_seed(0)
    sn = NB201Supernet(channels=4, num_cells=1)
    a = NB201Arch(("nor_conv_3x3", "none", "none", "none", "skip_connect", "none"))
    sn.set_active(a)
    sum(f.mean() for f in sn(torch.randn(2, 3, 8, 8))).backward()
    w3 = sn.cells[0].src[0].conv3.weight.grad
    assert w3[:4].abs().sum() > 0 and w3[4:].abs().sum() == 0  # edge 0 is slot 0 of node 0
    assert sn.cells[0].src[0].conv1.weight.grad is None or sn.cells[0].src[0].conv1.weight.grad.abs().sum() == 0
    assert sn.alphas.grad is None


def test_affine_tracking_supernet_extracts_bn_statistics():
    torch.manual_seed(0)
    sn = NB201Supernet(channels=4, num_cells=1, affine=True, track_running_stats=True)
    a = NB201Arch(("nor_conv_3x3",) * 6)
    x = torch.randn(8, 3, 8, 8)
    sn.train()
    for _ in range(3):
        sn(x, arch=a)
    sn.eval()
    net = sn.extract(a).eval()
    for u, v in zip(sn(x, arch=a), net(x)):
        assert torch.allclose(u, v, atol=1e-5)


def test_fast_average_pool_matches_torch_forward_and_backward():
    from nas_spaces._nb201 import avg_pool_3x3

    x = torch.randn(2, 3, 7, 5, dtype=torch.double, requires_grad=True)
    ref = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    assert torch.allclose(avg_pool_3x3(x), ref)
    g = torch.randn_like(ref)
    (gx,) = torch.autograd.grad(avg_pool_3x3(x), x, g)
    (gr,) = torch.autograd.grad(ref, x, g)
    assert torch.allclose(gx, gr)
    assert torch.autograd.gradcheck(avg_pool_3x3, (x[:1, :1].detach().requires_grad_(),))
    # GraSP differentiates the gradient again (create_graph): the second derivative must be right too
    assert torch.autograd.gradgradcheck(avg_pool_3x3, (x[:1, :1].detach().requires_grad_(),))


def test_standalone_network_pools_with_the_fast_kernel_and_equals_torch():
    from nas_spaces._nb201 import AvgPool3x3

    x = torch.randn(4, 16, 32, 32, requires_grad=True)
    ref = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    out = AvgPool3x3()(x)
    assert out.grad_fn is not None and "AvgPool2D" not in type(out.grad_fn).__name__
    assert torch.allclose(out, ref, atol=1e-6)
    g = torch.randn_like(ref)
    assert torch.allclose(torch.autograd.grad(out, x, g)[0], torch.autograd.grad(ref, x, g)[0], atol=1e-6)


def test_channels_last_supernet_is_the_cpu_default_and_computes_the_same():
    torch.manual_seed(0)
    a = NB201Supernet(channels=4, num_cells=1, channels_last=False)
    b = NB201Supernet(channels=4, num_cells=1)  # None: channels-last on the CPU in fp32
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    fa, fb = a(x), b(x)
    assert all(f.is_contiguous() for f in fa)
    assert all(f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous() for f in fb)
    for u, v in zip(fa, fb):
        assert torch.allclose(u, v, atol=1e-5)
    ga = torch.autograd.grad(sum(f.square().sum() for f in fa), [x, a.alphas])
    gb = torch.autograd.grad(sum(f.square().sum() for f in fb), [x, b.alphas])
    for u, v in zip(ga, gb):
        assert torch.allclose(u, v, rtol=1e-4, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # not under CPU autocast
        assert all(f.is_contiguous() for f in b(x))
    assert NB201Space(channels=4, num_cells=1).supernet().channels_last is None


def test_graph_lists_every_edge_with_its_op_and_names_the_weight_rows():
    import nas_core

    space = nas_core.create_space("nb201")
    arch = space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    assert space.graph(arch) == {
        "cell": [("in", "1", "nor_conv_3x3"), ("in", "2", "none"), ("1", "2", "skip_connect"), ("in", "out", "avg_pool_3x3"),
                 ("1", "out", "none"), ("2", "out", "nor_conv_1x1")]
    }
    names = space.edge_names()["cell"]
    assert len(names) == 6 and names[2] == "node 2 <- node 1" and names[3] == "node 3 (out) <- node 0 (in)"


# ---------------------------------------------------------------------------------------------
# cells without a path from input to output
# ---------------------------------------------------------------------------------------------
def _reaches_output(arch: NB201Arch) -> bool:
    """Reference: a depth-first search over the non-none edges (independent of NB201Arch.connected)."""
    out = {j: [i for (i, jj), op in zip(NB201_EDGES, arch.ops) if jj == j and op != "none"] for j in range(4)}
    stack, seen = [0], {0}
    while stack:
        for k in out[stack.pop()]:
            if k not in seen:
                seen.add(k)
                stack.append(k)
    return 3 in seen


def test_connectivity_and_defect_of_every_cell():
    space = NB201Space()
    broken = [a for a in space.enumerate() if not a.connected()]
    assert len(broken) == 341  # 2.2% of the space
    assert all(a.connected() == _reaches_output(a) for a in space.enumerate())
    assert all(space.defect(a) and "no path" in space.defect(a) for a in broken)
    assert space.defect(space.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")) is None
    # the output node fed only through a node that nothing reaches
    assert space.defect(space.parse("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"))


def test_discretize_connected_returns_the_most_probable_cell_with_a_path():
    sn = NB201Supernet(channels=4, num_cells=1, discretize_none=True)
    with torch.no_grad():
        sn.alphas.zero_()
        sn.alphas[:, NB201_OPS.index("none")] = 2.0  # every edge prefers none ...
        sn.alphas[3, NB201_OPS.index("skip_connect")] = 1.5  # ... edge 3 (node 3 <- node 0) least firmly
        sn.alphas[0, NB201_OPS.index("nor_conv_3x3")] = 1.0
    plain = sn.discretize()
    assert not plain.connected() and str(plain) == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    fixed = sn.discretize(connected=True)
    assert fixed.connected()
    # the cheapest repair: only the edge whose alternative costs least log-probability changes
    assert str(fixed) == "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    logp = F.log_softmax(sn.alphas.detach(), -1)

    def score(a):
        return float(sum(logp[e, NB201_OPS.index(op)] for e, op in enumerate(a.ops)))

    best_connected = max((a for a in NB201Space().enumerate() if a.connected()), key=score)
    assert score(fixed) == pytest.approx(score(best_connected))
    with torch.no_grad():
        sn.alphas[:, NB201_OPS.index("nor_conv_3x3")] = 5.0
    assert sn.discretize(connected=True) == sn.discretize()  # a connected argmax is returned as it is


def test_default_discretization_never_gives_none():
    sn = NB201Space(channels=4, num_cells=1).supernet()
    with torch.no_grad():
        sn.alphas[:, NB201_OPS.index("none")] = 3.0
    assert "none" not in str(sn.discretize()) and sn.discretize().connected()
    with_none = NB201Space(channels=4, num_cells=1).supernet(discretize_none=True)
    with torch.no_grad():
        with_none.alphas.copy_(sn.alphas)
    assert str(with_none.discretize()) == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
