"""The DARTS family: published genotypes and parameter counts, parsing, discretisation, PC-DARTS,
R-DARTS spaces, evaluation networks and the supernet."""

from __future__ import annotations

import collections
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_core import ArchitectureError, ConfigError, IncompatibleError, create_space
from nas_spaces._common import count_macs, count_params
from nas_spaces._darts import DartsNetwork, DartsSpace, MixedEdge
from nas_spaces._darts_arch import (
    AMOEBANET,
    DARTS_V1,
    DARTS_V2,
    GENOTYPES,
    NASNET,
    PC_DARTS,
    PDARTS,
    PRESETS,
    DartsArch,
    edge_index,
    edge_nodes,
)
from nas_spaces._darts_ops import Noise

TINY = dict(channels=4, layers=3, search_channels=4, search_layers=3)
PASTED_PC_DARTS = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), "
    "('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), "
    "reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"
)


# -- published numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("genotype,published", [(DARTS_V2, 3.3e6), (PC_DARTS, 3.6e6), (PDARTS, 3.4e6)])
def test_cifar_evaluation_network_has_the_published_parameter_count(genotype, published):
    space = DartsSpace(auxiliary=True)  # C=36, L=20, auxiliary head, 10 classes
    assert (space.channels, space.layers, space.num_classes) == (36, 20, 10)
    net = space.build(genotype, num_classes=10)
    assert net.auxiliary_head is not None
    without_aux = count_params(net, exclude="auxiliary")
    assert abs(without_aux - published) / published <= 0.02, without_aux
    assert space.cost(genotype).params == without_aux  # cost reports model size the DARTS way
    assert count_params(net) > without_aux + 4e5  # the auxiliary head exists (~0.4M) but is not counted


def test_cost_macs_match_hooks_and_rank_sensibly():
    space = DartsSpace(**TINY)
    rng = np.random.default_rng(0)
    for a in [space.sample(rng) for _ in range(3)]:
        net = space.build(a, num_classes=space.num_classes)
        assert space.cost(a).params == count_params(net)
        assert space.cost(a).flops == count_macs(net, torch.zeros(1, 3, 32, 32))
    full = DartsSpace()
    assert full.cost(DARTS_V1).flops < full.cost(DARTS_V2).flops < full.cost(PC_DARTS).flops
    assert 450e6 < full.cost(DARTS_V2).flops < 600e6  # DARTS reports ~0.5 GMACs at 32x32


# -- genotype strings -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_published_genotypes_round_trip(name):
    g = GENOTYPES[name]
    assert DartsArch.parse(str(g)) == g and str(DartsArch.parse(str(g))) == str(g)
    net = DartsSpace(**TINY).build(g, num_classes=3)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_pasted_genotype_with_range_and_namedtuple_convert():
    assert DartsArch.parse(PASTED_PC_DARTS) == PC_DARTS
    Genotype = collections.namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
    nt = Genotype(**{f: getattr(DARTS_V2, f) for f in ("normal", "normal_concat", "reduce", "reduce_concat")})
    assert DartsArch.parse(nt) == DARTS_V2
    assert DartsArch.parse(str(nt)) == DARTS_V2  # the namedtuple's own repr pastes in
    space = DartsSpace()
    assert space.parse(PASTED_PC_DARTS) == PC_DARTS
    assert space.validate(nt) == DARTS_V2


def test_equality_ignores_order_within_a_node():
    swapped = list(DARTS_V2.normal)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    other = DartsArch(tuple(swapped), DARTS_V2.normal_concat, DARTS_V2.reduce, DARTS_V2.reduce_concat)
    assert other == DARTS_V2 and hash(other) == hash(DARTS_V2) and str(other) != str(DARTS_V2)
    moved = list(DARTS_V2.normal)
    moved[1], moved[2] = moved[2], moved[1]  # across nodes: a different network
    assert DartsArch(tuple(moved), (2, 3, 4, 5), DARTS_V2.reduce, (2, 3, 4, 5)) != DARTS_V2


@pytest.mark.parametrize(
    "text,needle",
    [
        (str(DARTS_V2).replace("('dil_conv_3x3', 2)", "('conv_3x3', 2)"), "normal[7] ('conv_3x3', 2) (node 5 <- 2): unknown op 'conv_3x3'; valid: none"),
        (str(DARTS_V2).replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 6)"), "normal[7] ('dil_conv_3x3', 6) (node 5 <- 6): input 6 is out of range"),
        (str(DARTS_V2).replace("reduce_concat=[2, 3, 4, 5]", ""), "missing field(s) reduce_concat"),
        (str(DARTS_V2)[:-1], "not valid Genotype(...) syntax"),
        (str(DARTS_V2).replace("normal_concat", "normal_cat"), "unknown field 'normal_cat'"),
        ("Genotype(normal=[('sep_conv_3x3', 0, 1)], normal_concat=[2], reduce=[], reduce_concat=[2])", "normal[0] = ('sep_conv_3x3', 0, 1)"),
        ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], reduce_concat=[2])", "'normal' has 1 entries"),
        ("[1, 2]", "must be a call Genotype"),
        ("", "empty"),
    ],
)
def test_malformed_genotypes_point_at_the_bad_part(text, needle):
    with pytest.raises(ArchitectureError) as info:
        DartsArch.parse(text)
    assert needle in str(info.value), str(info.value)


def test_space_membership_errors():
    s0 = DartsSpace()
    dup = str(DARTS_V2).replace("normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "normal=[('sep_conv_3x3', 0), ('sep_conv_5x5', 0)")
    with pytest.raises(ArchitectureError, match=r"normal\[1\].*node 2 takes input 0 twice"):
        s0.parse(dup)
    with pytest.raises(ArchitectureError, match="'none' is never kept"):
        s0.parse(str(DARTS_V2).replace("('dil_conv_3x3', 2)", "('none', 2)"))
    with pytest.raises(ArchitectureError, match="4 nodes"):
        s0.parse(NASNET)
    s2 = create_space("darts_s2")
    with pytest.raises(ArchitectureError) as info:
        s2.parse(DARTS_V2)
    msg = str(info.value)
    assert msg.startswith("darts_s2: normal[7] ('dil_conv_3x3', 2) (node 5 <- 2, edge 11)") and "valid: skip_connect, sep_conv_3x3" in msg
    # but any genotype builds, NASNet's 5-node cells included
    assert s0.build(NASNET, num_classes=10) is not None and s0.cost(AMOEBANET).params > 3e6


# -- R-DARTS spaces ---------------------------------------------------------------------------------


def test_rdarts_op_sets():
    assert PRESETS["s1"]["normal"][5] == ("max_pool_3x3", "skip_connect")
    assert PRESETS["s1"]["reduce"][1] == ("max_pool_3x3", "dil_conv_3x3")
    assert all(len(o) == 2 for kind in ("normal", "reduce") for o in PRESETS["s1"][kind])
    assert set(PRESETS["s2"]["normal"]) == {("skip_connect", "sep_conv_3x3")}
    assert set(PRESETS["s3"]["reduce"]) == {("none", "skip_connect", "sep_conv_3x3")}
    assert set(PRESETS["s4"]["normal"]) == {("noise", "sep_conv_3x3")}
    for preset, n_ops in (("s1", 2), ("s2", 2), ("s3", 3), ("s4", 2)):
        sn = create_space(f"darts_{preset}", **TINY).supernet()
        assert sn.alphas_normal.shape == (14, n_ops) and sn.alphas_reduce.shape == (14, n_ops)
    s1 = create_space("darts_s1", **TINY)
    rng = np.random.default_rng(0)
    for _ in range(10):
        a = s1.sample(rng)
        for k, (op, j) in enumerate(a.normal):
            assert op in PRESETS["s1"]["normal"][edge_index(2 + k // 2, j)]


def test_noise_op_is_random_in_training_and_fixed_in_eval():
    op = Noise(1)
    x = torch.ones(2, 3, 4, 4)
    assert not torch.equal(op(x), op(x))
    op.eval()
    assert torch.equal(op(x), op(x)) and op(x).std() > 0.5
    assert Noise(2).eval()(x).shape == (2, 3, 2, 2)


# -- supernet ---------------------------------------------------------------------------------------


def test_edge_indexing():
    assert [edge_nodes(e) for e in range(14)][:5] == [(2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
    assert all(edge_index(*edge_nodes(e)) == e for e in range(14))


def test_mixed_edge_is_the_softmax_weighted_sum_of_its_ops():
    torch.manual_seed(0)
    names = PRESETS["s0"]["normal"][0]
    edge = MixedEdge(names, 4, 1)
    x = torch.randn(2, 4, 8, 8)
    w = F.softmax(torch.randn(len(names)), -1)
    ref = 0
    for k, (name, op) in enumerate(zip(names, edge.ops)):
        ref = ref + w[k] * (torch.zeros_like(x) if name == "none" else op(F.relu(x) if edge.pre[k] else x))
    assert torch.allclose(edge(x, F.relu(x), w), ref, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2])
def test_edges_leaving_a_state_share_one_pooling_computed_once(k):
    """The pooled map of a state (pool + affine-free BN, no weights) is computed once per forward for all the
    edges leaving it; values, gradients and running statistics equal those of one pooling module per edge."""
    torch.manual_seed(0)
    sn = DartsSpace(**dict(TINY, search_channels=8)).supernet(partial_channels=k)
    cell = sn.cells[0]
    assert cell.edges[edge_index(2, 0)].ops[1] is cell.edges[edge_index(5, 0)].ops[1]  # max pool of state 0
    assert cell.edges[edge_index(2, 0)].ops[1] is not cell.edges[edge_index(2, 1)].ops[1]  # another state
    unshared = copy.deepcopy(sn)
    for c in unshared.cells:
        for edge in c.edges:
            for i, op in enumerate(edge.ops):
                if edge.shared[i]:
                    edge.ops[i] = copy.deepcopy(op)
            edge.shared = (False,) * len(edge.ops)
    calls = collections.Counter()
    for name, m in sn.named_modules():
        if type(m).__name__ == "Pool":
            m.register_forward_hook(lambda mod, i, o: calls.update([id(mod)]))
    x = torch.randn(4, 3, 16, 16)
    for mode in ("train", "train", "eval"):
        sn.train(mode == "train"), unshared.train(mode == "train")
        calls.clear()
        for u, v in zip(sn(x), unshared(x)):
            assert torch.allclose(u, v, atol=1e-5), mode
        assert calls and max(calls.values()) == 1  # once per state and pool kind
        assert len(calls) == 2 * 5 * len(sn.cells)  # 2 pool kinds x 5 states per cell
    sum(f.square().mean() for f in sn(x)).backward()
    sum(f.square().mean() for f in unshared(x)).backward()
    for a, b in zip(sn.arch_parameters(), unshared.arch_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


def test_channels_last_is_the_cpu_default_and_changes_no_value():
    torch.manual_seed(0)
    space = DartsSpace(**TINY)
    auto = space.supernet()
    nchw = space.supernet(channels_last=False)
    nchw.load_state_dict(auto.state_dict())
    x = torch.randn(2, 3, 16, 16)
    fa, fn = auto(x), nchw(x)
    assert fa[0].is_contiguous(memory_format=torch.channels_last) and fn[0].is_contiguous()
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fa, fn))
    net = auto.extract(space.sample(np.random.default_rng(0)))
    assert net.channels_last is None and net(x)[0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("c", [4, 8])  # below 8 channels the CPU slices instead of striding
@pytest.mark.parametrize("size", [(16, 16), (15, 15), (7, 8), (1, 1)])
def test_factorized_reduce_equals_two_strided_1x1_convs(size, c):
    from nas_spaces._darts_ops import FactorizedReduce

    m = FactorizedReduce(c, 2 * c)
    x = torch.randn(2, c, *size)
    r = F.relu(x)
    shifted = F.pad(r[:, :, 1:, 1:], (0, size[1] % 2, 0, size[0] % 2))
    ref = m.bn(torch.cat([F.conv2d(r, m.conv_1.weight, stride=2), F.conv2d(shifted, m.conv_2.weight, stride=2)], 1))
    assert torch.allclose(m(x), ref, atol=1e-6)


_AVX2_SCRIPT = """
import torch
from nas_spaces._darts_ops import FactorizedReduce
torch.set_num_threads(1)
torch.manual_seed(0)
for c in (2, 4, 6):
    m = FactorizedReduce(c, 2 * c)
    for _ in range(60):
        x = torch.randn(2, c, 16, 16).contiguous(memory_format=torch.channels_last).requires_grad_()
        m(x).sum().backward()
print("ok")
"""


def test_factorized_reduce_survives_onednn_avx2_kernels():
    """oneDNN's AVX2 strided 1x1 convolution backward corrupts the heap for channels-last inputs with
    fewer than 8 channels (partial-channel supernets at C=16, K=4 make them); the subprocess forces the
    AVX2 kernels so an AVX-512 machine catches a regression too."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2")
    proc = subprocess.run([sys.executable, "-c", _AVX2_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_bf16_autocast_on_the_cpu_gives_finite_gradients():
    """Under CPU autocast the supernet stays NCHW: torch 2.14's channels-last bf16 dilated depthwise conv
    returns NaN weight gradients for the small output gradients a mixed edge passes back (seed 0 hits it)."""
    torch.manual_seed(0)
    sn = DartsSpace(**TINY).supernet()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = sn(torch.randn(4, 3, 32, 32))
        loss = sum(f.float().mean() for f in feats)
    loss.backward()
    assert all(f.dtype == torch.bfloat16 for f in feats)
    bad = [n for n, p in sn.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients in {bad[:3]}"


def test_discretize_keeps_top2_edges_and_never_none():
    space = DartsSpace(**TINY)
    sn = space.supernet()
    with torch.no_grad():
        for alphas in (sn.alphas_normal, sn.alphas_reduce):
            alphas.zero_()
            alphas[:, 0] = 10.0  # 'none' dominates everywhere
            for node in range(2, 6):  # node n: edges from n-1 (sep_conv_5x5) and 0 (dil_conv_3x3) are strongest
                alphas[edge_index(node, node - 1), 5] = 3.0
                alphas[edge_index(node, 0), 6] = 2.0
    g = sn.discretize()
    assert all(op != "none" for op, _ in g.normal + g.reduce)
    assert g.normal[:2] == (("sep_conv_5x5", 1), ("dil_conv_3x3", 0))
    assert g.normal[6:] == (("sep_conv_5x5", 4), ("dil_conv_3x3", 0))
    assert space.parse(str(g)) == g


def test_gradients_reach_alphas_and_none_weights():
    sn = DartsSpace(**TINY).supernet()
    sum(f.mean() for f in sn(torch.randn(2, 3, 16, 16))).backward()
    assert sn.alphas_normal.grad is not None and torch.all(sn.alphas_normal.grad[:, 0] != 0)
    assert sn.alphas_reduce.grad.abs().sum() > 0
    assert len(sn.arch_parameters()) == 2 and not sn.edge_normalization


def test_partial_channels_with_edge_normalization():
    space = DartsSpace(**dict(TINY, search_channels=8))
    full, pc = space.supernet(), space.supernet(partial_channels=4)
    assert pc.partial_channels == 4 and pc.edge_normalization
    assert len(pc.arch_parameters()) == 4 and pc.betas_normal.shape == (14,)
    ew = pc._edge_weights("normal")
    assert torch.allclose(ew[:2].sum(), torch.tensor(1.0)) and torch.allclose(ew[9:].sum(), torch.tensor(1.0))
    assert count_params(pc) < count_params(full) / 2
    # ops see C/4 channels
    assert pc.cells[0].edges[0].ops[4].dw1.in_channels == 2
    x = torch.randn(2, 3, 16, 16)
    feats = pc(x)
    assert [f.shape[1] for f in feats] == [f.shape[1] for f in full(x)]
    sum(f.mean() for f in feats).backward()
    assert pc.betas_normal.grad is not None and pc.betas_normal.grad.abs().sum() > 0
    # betas change the derived genotype: make edge 1 of node 2 (input 1) win through the edge weight only
    with torch.no_grad():
        pc.alphas_normal.zero_()
        pc.alphas_normal[:, 4] = 1.0
        pc.betas_normal.zero_()
        pc.betas_normal[edge_index(5, 3)] = 5.0
        pc.betas_normal[edge_index(5, 4)] = 4.0
    assert sorted(j for _, j in pc.discretize().normal[6:]) == [3, 4]
    with pytest.raises(IncompatibleError, match="partial_channels=1"):
        pc.extract(space.sample(np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="partial-channel groups"):
        space.supernet(partial_channels=3)
    no_en = space.supernet(partial_channels=2, edge_normalization=False)
    assert len(no_en.arch_parameters()) == 2


@pytest.mark.parametrize("name", ["darts", "darts_s1", "darts_s3"])
def test_supernet_path_equals_extracted_network(name):
    torch.manual_seed(0)
    space = create_space(name, **TINY)
    sn = space.supernet()
    x = torch.randn(4, 3, 16, 16)
    rng = np.random.default_rng(1)
    for _ in range(2):
        a = space.sample(rng)
        net = sn.extract(a)
        assert isinstance(net, DartsNetwork)
        sn.train(), net.train()
        for u, v in zip(sn(x, arch=a), net(x)):
            assert torch.allclose(u, v, atol=1e-5)
        sn.eval(), net.eval()
        for u, v in zip(sn(x, arch=a), net(x)):
            assert torch.allclose(u, v, atol=1e-5)


def test_single_path_uses_only_the_genotype_edges():
    torch.manual_seed(0)
    space = DartsSpace(**TINY)
    sn = space.supernet()
    a = space.parse(str(DARTS_V2))
    sum(f.mean() for f in sn(torch.randn(2, 3, 16, 16), arch=a)).backward()
    cell = sn.cells[0]  # normal cell: node 2 <- 0 via sep_conv_3x3 (op 4); node 3 never reads input 1 via dil_conv
    used = cell.edges[edge_index(2, 0)].ops[4].dw1.weight.grad
    unused = cell.edges[edge_index(3, 2)].ops[4].dw1.weight.grad
    assert used is not None and used.abs().sum() > 0 and unused is None
    assert sn.alphas_normal.grad is None


# -- evaluation networks -------------------------------------------------------------------------------


def test_imagenet_network_stem_and_features():
    space = DartsSpace(network="imagenet", channels=8, layers=3, num_classes=5, auxiliary=True)
    assert (space.img_size, space.num_classes) == (224, 5)
    net = space.build(DARTS_V2, num_classes=5)
    convs = [m for m in list(net.stem0.modules()) + list(net.stem1.modules()) if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * 3 and [c.kernel_size for c in convs] == [(3, 3)] * 3
    assert net.feature_info.reduction() == [8, 16, 32]
    net.train()
    logits, aux = net.forward_train(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 5) and aux.shape == (2, 5)
    feats = net.forward_features(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [8, 4, 2]
    sn = space.supernet(channels=8, layers=3)
    assert sn.stem_kind == "imagenet" and sn(torch.randn(2, 3, 32, 32))[0].shape[-1] == 4


def test_cifar_auxiliary_head_and_drop_path():
    space = DartsSpace(channels=4, layers=3, auxiliary=True, drop_path_prob=0.3)
    net = space.build(DARTS_V2, num_classes=10)
    x = torch.randn(8, 3, 32, 32)
    net.train()
    torch.manual_seed(0)
    l1, a1 = net.forward_train(x)
    torch.manual_seed(1)
    l2, _ = net.forward_train(x)
    assert a1.shape == (8, 10) and not torch.allclose(l1, l2)
    net.eval()
    assert torch.equal(net(x), net(x))
    assert net.forward_train(x)[1] is None  # no auxiliary logits at evaluation


def test_encode_decode():
    space = DartsSpace()
    a = space.parse(str(DARTS_V2))
    adj, ops = space.encode(a)
    assert adj.shape == (22, 22) and ops.shape == (22, 9)
    assert space.decode(adj, ops) == a
    bad = adj.copy()
    bad[0, 2] = 0  # an op node without its input
    assert space.decode(bad, ops) is None
    dup = adj.copy()
    dup[0, 3], dup[1, 3] = 1, 0  # node 2 would read input 0 twice
    assert space.decode(dup, ops) is None


def test_mutate_and_crossover():
    space = DartsSpace()
    rng = np.random.default_rng(0)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(30):
        m = space.mutate(a, rng)
        assert m != a
        diff = sum(x != y for x, y in zip(a.sorted().normal + a.sorted().reduce, m.sorted().normal + m.sorted().reduce))
        assert 1 <= diff <= 2
        c = space.crossover(a, b, rng)
        for kind in ("normal", "reduce"):
            for i in range(4):
                pair = c.cell(kind)[2 * i : 2 * i + 2]
                assert pair in (a.cell(kind)[2 * i : 2 * i + 2], b.cell(kind)[2 * i : 2 * i + 2])


def test_config_errors():
    with pytest.raises(ConfigError, match="preset"):
        DartsSpace(preset="s9")
    with pytest.raises(ConfigError, match="channels.*even"):
        DartsSpace(channels=5)
    with pytest.raises(ConfigError, match="unknown supernet option 'pc'"):
        DartsSpace().supernet(pc=4)
    with pytest.raises(ConfigError, match="unknown op 'conv9'"):
        DartsSpace(ops=["skip_connect", "conv9"])
    custom = DartsSpace(ops=["none", "skip_connect", "max_pool_3x3"], **TINY)
    assert custom.supernet().alphas_normal.shape == (14, 3) and custom.config()["ops"][0] == "none"


def test_graph_has_both_cells_with_their_ops_and_outputs():
    import nas_core
    from nas_spaces import DARTS_V2

    space = nas_core.create_space("darts")
    g = space.graph(space.parse(str(DARTS_V2)))
    assert set(g) == {"normal", "reduce"}
    ops = [op for _, _, op in g["normal"] if op]
    assert ops == [op for op, _ in DARTS_V2.normal]
    assert sorted(s for s, d, op in g["normal"] if d == "c_{k}") == ["0", "1", "2", "3"]


def test_edge_names_name_every_row_of_the_architecture_weights():
    import nas_core
    from nas_spaces._darts_arch import NUM_EDGES, edge_index

    space = nas_core.create_space("darts")
    names = space.edge_names()
    assert set(names) == {"normal", "reduce"} and len(names["normal"]) == NUM_EDGES == len(set(names["normal"]))
    assert names["normal"][edge_index(2, 0)] == "node 0 <- c_{k-2}"
    assert names["reduce"][edge_index(5, 4)] == "node 3 <- node 2"
