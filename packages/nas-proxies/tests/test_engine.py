"""The proxies' maths against independent computations on tiny networks, shared passes, state
preservation, the label-free forms and error reporting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from nas_core import ConfigError, NonFiniteError, Objective
from nas_core.testing import FakeObjective, FakeSpace, assert_module_unchanged, fake_images, snapshot_module

import nas_proxies as npx
from nas_proxies import PROXY_NAMES, score_all


def fake_net(arch="conv-skip-conv", num_classes=10, seed=0, channels=4):
    torch.manual_seed(seed)
    space = FakeSpace(channels=channels)
    return space.build(space.parse(arch), num_classes=num_classes)


def batch(n=8, size=16, seed=0, classes=3):
    return fake_images(n, size, seed), torch.arange(n) % classes


class Chain(nn.Sequential):
    """A plain sequential net with an ``arch`` attribute for error messages."""

    arch = "chain"


# -- shared passes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("supervised", [True, False])
def test_score_all_equals_each_proxy_alone(supervised):
    net = fake_net()
    x, y = batch()
    loss_fn = None if supervised else npx.objective_loss(FakeObjective(), net, img_size=16)
    targets = y if supervised else None
    together = score_all(net, x, targets, loss_fn=loss_fn)
    assert list(together) == list(PROXY_NAMES)
    for name in PROXY_NAMES:
        alone = npx.PROXY_CLASSES[name]().score(net, x, targets, loss_fn=loss_fn)
        assert alone == pytest.approx(together[name], rel=1e-6, abs=1e-9), name


def test_score_together_equals_each_proxy_alone_and_groups_by_settings():
    net = fake_net()
    x, y = batch()
    proxies = [npx.PROXY_CLASSES[n]() for n in PROXY_NAMES] + [npx.PROXY_CLASSES["fisher"](fan_in=False)]
    together = type(proxies[0]).score_together(proxies, net, x, y)
    alone = [p.score(net, x, y) for p in proxies]
    assert together == pytest.approx(alone, rel=1e-6, abs=1e-9)
    assert together[-1] != together[PROXY_NAMES.index("fisher")]  # another setting: its own pass


def test_score_together_gives_nan_where_a_proxy_is_undefined():
    net = Chain(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 16 * 16, 3))
    with torch.no_grad():
        net[0].weight.zero_()  # no signal: jacov's correlation is undefined, params still counts
    x, y = batch()
    jacov, params = npx.PROXY_CLASSES["jacov"](), npx.PROXY_CLASSES["params"]()
    with pytest.raises(NonFiniteError):
        jacov.score(net, x, y)
    vals = type(jacov).score_together([jacov, params], net, x, y)
    assert math.isnan(vals[0]) and vals[1] == pytest.approx(params.score(net, x, y))


def test_label_free_and_supervised_forms_differ():
    net = fake_net()
    x, y = batch()
    sup = score_all(net, x, y, ["grad_norm", "snip", "fisher"])
    free = score_all(net, x, None, ["grad_norm", "snip", "fisher"], loss_fn=npx.objective_loss(FakeObjective(), net))
    assert all(sup[p] != free[p] for p in sup)


def test_network_objective_and_rng_left_exactly_as_found():
    net = fake_net()
    x, y = batch()
    net.train()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for i in range(3):
            net(fake_images(8, 16, 10 + i))
    net.stem.requires_grad_(False)
    net.cell1.eval()
    for p in net.parameters():
        if p.requires_grad:
            p.grad = torch.randn_like(p)
    objective = FakeObjective()
    loss_fn = npx.objective_loss(objective, net, img_size=16)
    before, before_obj = snapshot_module(net), snapshot_module(objective)
    rng = torch.get_rng_state()
    score_all(net, x, y)
    score_all(net, x, None, loss_fn=loss_fn)
    assert_module_unchanged(before, net, "score_all")
    assert_module_unchanged(before_obj, objective, "score_all (objective)")
    assert torch.equal(torch.get_rng_state(), rng), "score_all advanced the global RNG"


def test_deterministic_for_a_seed_and_seed_matters():
    net = fake_net()
    x, _ = batch()
    a = score_all(net, x, None, ["zen", "epe_nas", "jacov", "nwot"], seed=3)
    b = score_all(net, x, None, ["zen", "epe_nas", "jacov", "nwot"], seed=3)
    c = score_all(net, x, None, ["zen"], seed=4)
    assert dict(a) == dict(b)
    assert c["zen"] != a["zen"]


# -- the maths, against independent computations --------------------------------------------------


def test_gradient_proxies_match_their_definitions():
    net = fake_net()
    x, y = batch()
    got = score_all(net, x, y, ["grad_norm", "snip", "plain"])
    net.train()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    loss = F.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, [m.weight for m in layers])
    assert got["grad_norm"] == pytest.approx(sum(float(g.norm()) for g in grads), rel=1e-5)
    assert got["snip"] == pytest.approx(sum(float((m.weight.detach() * g).abs().sum()) for m, g in zip(layers, grads)), rel=1e-5)
    assert got["plain"] == pytest.approx(sum(float((m.weight.detach() * g).sum()) for m, g in zip(layers, grads)), rel=1e-4)


def test_grasp_is_minus_theta_hessian_gradient():
    torch.manual_seed(0)
    net = Chain(nn.Linear(5, 6, bias=False), nn.Tanh(), nn.Linear(6, 3, bias=False))
    x, y = torch.randn(7, 5), torch.arange(7) % 3
    got = score_all(net, x, y, ["grasp"])["grasp"]
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).double()

    def loss_of(flat):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = flat[i : i + math.prod(s)].reshape(s)
            i += math.prod(s)
        return F.cross_entropy(torch.func.functional_call(net.double(), params, (x.double(),)), y)

    H = torch.autograd.functional.hessian(loss_of, theta)
    g = torch.autograd.functional.jacobian(loss_of, theta)
    assert got == pytest.approx(float(-(theta @ H @ g)), rel=1e-4)


class TinyAttention(nn.Module):
    """Tokens through ``scaled_dot_product_attention`` (a fused kernel by default), then a linear head."""

    arch = "attention"

    def __init__(self):
        super().__init__()
        self.qkv, self.head = nn.Linear(4, 12), nn.Linear(4, 3)

    def forward(self, x):
        q, k, v = self.qkv(x.flatten(2).transpose(1, 2)).unflatten(-1, (3, 1, 4)).permute(2, 0, 3, 1, 4)
        return self.head(F.scaled_dot_product_attention(q, k, v).mean((1, 2)))


def test_grasp_differentiates_through_fused_attention():
    """grasp's double backward runs attention through the math kernel: the fused ones have no second derivative."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    net = TinyAttention()
    x, y = torch.randn(6, 4, 4, 4), torch.arange(6) % 3
    got = score_all(net, x, y, ["grasp"])["grasp"]
    with sdpa_kernel(SDPBackend.MATH):
        ref = score_all(net, x, y, ["grasp"])["grasp"]
    assert math.isfinite(got) and got == pytest.approx(ref, rel=1e-5)


def test_fisher_matches_blockswap_sum_with_fan_in():
    torch.manual_seed(0)
    net = Chain(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.randn(6, 3, 5, 5), torch.arange(6) % 3
    got = score_all(net, x, y, ["fisher"])["fisher"]
    got_per_channel = score_all(net, x, y, ["fisher"], fisher_fan_in=False)["fisher"]
    acts = {}
    h1 = net[0].register_forward_hook(lambda m, i, o: acts.__setitem__("conv", o))
    h2 = net[4].register_forward_hook(lambda m, i, o: acts.__setitem__("fc", o))
    loss = F.cross_entropy(net(x), y)
    h1.remove(), h2.remove()
    ga, gf = torch.autograd.grad(loss, [acts["conv"], acts["fc"]])
    conv_terms = 0.5 * ((acts["conv"].detach() * ga).sum((2, 3)) ** 2).mean(0)
    fc_terms = 0.5 * ((acts["fc"].detach() * gf) ** 2).mean(0)
    assert got_per_channel == pytest.approx(float(conv_terms.sum() + fc_terms.sum()), rel=1e-5)
    assert got == pytest.approx(float(conv_terms.sum() * 27 + fc_terms.sum() * 4), rel=1e-5)


@pytest.mark.parametrize("with_bn", [False, True])
def test_synflow_conserves_flow_layer_by_layer(with_bn):
    torch.manual_seed(0)
    mods = [nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 3, bias=False)]
    if with_bn:
        mods.insert(1, nn.BatchNorm1d(5))
    net = Chain(*mods)
    x = torch.randn(4, 6)
    w = [m.weight.detach().double().abs() for m in net if isinstance(m, nn.Linear)]
    R = float(torch.ones(3).double() @ w[2] @ w[1] @ w[0] @ torch.ones(6).double())
    raw = score_all(net, x, None, ["synflow"], synflow_log=False)["synflow"]
    # synaptic flow is conserved: every layer carries R, so the sum over 3 layers is 3R (BN bypassed)
    assert raw == pytest.approx(3 * R, rel=1e-10)
    assert score_all(net, x, None, ["synflow"])["synflow"] == pytest.approx(math.log(3 * R), rel=1e-12)


def test_synflow_uses_double_precision_and_only_the_input_shape():
    net = fake_net("conv-conv-conv")
    a = score_all(net, fake_images(4, 16, 0), None, ["synflow"])["synflow"]
    b = score_all(net, torch.randn(9, 3, 16, 16), None, ["synflow"])["synflow"]
    assert a == b


def test_nwot_is_logdet_of_the_activation_code_kernel():
    torch.manual_seed(0)
    net = Chain(nn.Flatten(), nn.Linear(48, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 3))
    x = torch.randn(10, 3, 4, 4)
    got = score_all(net, x, None, ["nwot"])["nwot"]
    h1 = net[1](net[0](x))
    h2 = net[3](torch.relu(h1))
    K = torch.zeros(10, 10, dtype=torch.float64)
    for h in (h1, h2):
        c = (h > 0).double()
        K += c @ c.T + (1 - c) @ (1 - c).T
    assert got == pytest.approx(float(torch.linalg.slogdet(K)[1]), rel=1e-12)


def _np_jacov(j):
    corr = np.corrcoef(j)
    v = np.linalg.eigvalsh(corr)
    return -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))


def _np_epe(j, labels):
    total = 0.0
    for c in np.unique(labels):
        rows = j[labels == c]
        corr = np.atleast_2d(np.corrcoef(rows))
        total += abs(np.sum(np.log(np.abs(corr) + 1e-5)))
    return total


def test_jacov_and_epe_nas_match_their_formulas_on_the_input_jacobian():
    net = fake_net()
    x, y = batch(n=10, classes=3)
    got = score_all(net, x, y, ["jacov", "epe_nas"])
    net.train()
    xr = x.clone().requires_grad_(True)
    (j,) = torch.autograd.grad(net(xr).sum(), xr)
    j = j.reshape(10, -1).double().numpy()
    assert got["jacov"] == pytest.approx(_np_jacov(j), rel=1e-8)
    assert got["epe_nas"] == pytest.approx(_np_epe(j, y.numpy()), rel=1e-8)


@pytest.mark.parametrize("track", [True, False])
def test_zen_follows_its_definition(track):
    torch.manual_seed(0)
    net = Chain(nn.Linear(6, 5, bias=False), nn.BatchNorm1d(5, track_running_stats=track))
    images = torch.rand(8, 6)
    got = score_all(net, images, None, ["zen"], seed=7)["zen"]
    g = torch.Generator().manual_seed(7)  # documented order: weights (module order), then x, then eps
    W = torch.randn(5, 6, generator=g)
    x = torch.randn(8, 6, generator=g)
    eps = torch.randn(8, 6, generator=g)

    def f(inp):
        h = inp @ W.T
        var = h.var(0, unbiased=False)
        return (h - h.mean(0)) / torch.sqrt(var + 1e-5), var

    fx, var = f(x)
    fm, _ = f(x + 1e-2 * eps)
    expected = math.log(float((fx - fm).abs().sum(1).mean())) + 0.5 * math.log(float(var.mean()))
    assert got == pytest.approx(expected, rel=1e-5)
    # it re-draws the weights: the network's own weights do not matter, the architecture does
    other = fake_net(seed=1)
    assert score_all(fake_net(seed=0), images.new_zeros(4, 3, 16, 16), None, ["zen"])["zen"] == pytest.approx(
        score_all(other, images.new_zeros(4, 3, 16, 16), None, ["zen"])["zen"], rel=1e-6
    )
    assert score_all(fake_net("conv-conv-conv"), torch.zeros(4, 3, 16, 16), None, ["zen"])["zen"] != pytest.approx(
        score_all(fake_net("skip-zero-zero"), torch.zeros(4, 3, 16, 16), None, ["zen"])["zen"]
    )


def test_flops_params_and_l2_norm_count_the_module():
    torch.manual_seed(0)
    net = Chain(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )
    got = score_all(net, torch.rand(5, 3, 16, 16), None, ["flops", "params", "l2_norm"])
    macs = 8 * 16 * 16 * 3 * 9 + 8 * 8 * 8 * 4 * 9 + 10 * 8
    assert got["flops"] == pytest.approx(macs / 1e6, abs=1e-12)
    assert got["params"] == pytest.approx(sum(p.numel() for p in net.parameters()) / 1e6, abs=1e-12)
    l2 = sum(float(m.weight.detach().norm()) for m in net if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert got["l2_norm"] == pytest.approx(l2, rel=1e-6)


# -- label-free forms ----------------------------------------------------------------------------


def test_loss_proxies_need_targets_or_a_loss():
    net = fake_net()
    x, _ = batch()
    with pytest.raises(ConfigError, match="objective_loss"):
        score_all(net, x, None, ["snip"])
    assert set(score_all(net, x, None, ["jacov", "nwot", "epe_nas", "synflow"])) == {"jacov", "nwot", "epe_nas", "synflow"}


def test_objective_loss_is_the_objectives_loss_and_repeatable():
    net = fake_net()
    x, _ = batch()
    objective = FakeObjective(noise=0.3)  # random noise in its loss: seeded by the loss_fn
    loss_fn = npx.objective_loss(objective, net, img_size=16, seed=5)
    assert objective.is_setup and objective.feature_info == net.feature_info
    a, b = float(loss_fn(net, x).detach()), float(loss_fn(net, x).detach())
    assert a == b
    assert float(npx.objective_loss(objective, net, img_size=16, seed=6)(net, x).detach()) != a
    with pytest.raises(ConfigError, match="needs labels"):

        class Supervised(FakeObjective):
            requires_labels = True

        npx.objective_loss(Supervised(), net)


class PretextObjective(FakeObjective):
    """A fake objective with a rotation pretext task (4 classes)."""

    calls = 0

    def pretext_targets(self, images):
        PretextObjective.calls += 1
        rots = [torch.rot90(images, k, (2, 3)) for k in range(4)]
        return torch.cat(rots), torch.arange(4).repeat_interleave(images.shape[0])


def test_epe_nas_takes_pretext_classes_from_the_objective():
    net = fake_net()
    x, _ = batch(n=6)
    loss_fn = npx.objective_loss(PretextObjective(), net, img_size=16)
    got = score_all(net, x, None, ["epe_nas"], loss_fn=loss_fn)["epe_nas"]
    assert PretextObjective.calls == 1
    inputs, classes = loss_fn.pretext_targets(x)
    net.train()
    xr = inputs.clone().requires_grad_(True)
    (j,) = torch.autograd.grad(net(xr).sum(), xr)
    assert got == pytest.approx(_np_epe(j.reshape(len(xr), -1).double().numpy(), classes.numpy()), rel=1e-8)


def test_epe_nas_falls_back_to_kmeans_pseudo_classes():
    net = fake_net()
    x, _ = batch(n=12)
    got = score_all(net, x, None, ["epe_nas"])["epe_nas"]
    classes = npx.pseudo_targets(x, 6)  # min(10 pseudo-classes, batch // 2)
    net.train()
    xr = x.clone().requires_grad_(True)
    (j,) = torch.autograd.grad(net(xr).sum(), xr)
    assert got == pytest.approx(_np_epe(j.reshape(12, -1).double().numpy(), classes.numpy()), rel=1e-8)


def test_pseudo_targets_recover_separated_groups_deterministically():
    g = torch.Generator().manual_seed(0)
    dark = 0.1 * torch.rand(10, 3, 8, 8, generator=g)
    bright = 0.9 + 0.1 * torch.rand(10, 3, 8, 8, generator=g)
    left = torch.zeros(10, 3, 8, 8)
    left[..., :4] = 1.0
    images = torch.cat([dark, bright, left])
    labels = npx.pseudo_targets(images, 3)
    groups = [set(labels[i : i + 10].tolist()) for i in (0, 10, 20)]
    assert all(len(s) == 1 for s in groups) and len(set.union(*groups)) == 3
    assert torch.equal(labels, npx.pseudo_targets(images, 3))


def test_networks_without_a_classifier_work_label_free():
    net = fake_net(num_classes=None)
    x, y = batch()
    s = score_all(net, x, None, loss_fn=npx.objective_loss(FakeObjective(), net, img_size=16))
    assert set(s) == set(PROXY_NAMES)
    with pytest.raises(ConfigError, match="num_classes"):
        score_all(net, x, y, ["snip"])


# -- errors ----------------------------------------------------------------------------------------


class Constant(nn.Module):
    """Output independent of the input: the Jacobian is zero, its correlation undefined."""

    arch = "const-arch"

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.ones(x.shape[0], 4)) + 0 * x.sum(dim=tuple(range(1, x.dim())))[:, None]


def test_non_finite_scores_raise_naming_proxy_and_architecture():
    x = torch.randn(6, 4)
    with pytest.raises(NonFiniteError, match=r"proxy 'jacov' is nan for architecture const-arch"):
        score_all(Constant(), x, None, ["jacov"])
    s = score_all(Constant(), x, None, ["jacov", "params"], errors="skip")
    assert set(s) == {"params"} and "jacov" in s.errors and "const-arch" in s.errors["jacov"]
    net = fake_net()
    with torch.no_grad():
        net.head.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="conv-skip-conv"):
        score_all(net, *batch(), ["grad_norm"])
    with pytest.raises(NonFiniteError, match="proxy 'synflow'.*conv-skip-conv"):
        score_all(net, batch()[0], None, ["synflow"])


def test_bad_requests_are_config_errors():
    net = fake_net()
    x, y = batch()
    with pytest.raises(ConfigError, match="Did you mean 'synflow'"):
        score_all(net, x, y, ["synflw"])
    with pytest.raises(ConfigError, match="unknown option 'sed'"):
        score_all(net, x, y, ["params"], sed=1)
    with pytest.raises(ConfigError, match="errors must be"):
        score_all(net, x, y, ["params"], errors="ignore")
    assert list(score_all(net, x, y, "jacob_cov,naswot")) == ["jacov", "nwot"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net = fake_net()
    x, y = batch()
    cpu = score_all(net, x, y)
    net_gpu = fake_net().cuda()
    gpu = score_all(net_gpu, x.cuda(), y.cuda())
    for p in PROXY_NAMES:
        assert gpu[p] == pytest.approx(cpu[p], rel=1e-3, abs=1e-4), p
    assert all(t.is_cuda for t in net_gpu.state_dict().values())
