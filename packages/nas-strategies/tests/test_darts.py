"""DARTS: the alphas move towards the known best op, the second-order hypergradient matches a numerical
check, alpha history, early stop on skips, partial channels, labels, non-finite losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nas_core import ConfigError, IncompatibleError, NonFiniteError, RunContext, TensorImages, create_strategy
from nas_core.testing import FakeObjective, FakeProxy, FakeSpace, fake_images
from nas_strategies import DartsSearch, count_skips, unrolled_arch_grads
from strategies_toys import TOY_OPS, ToyObjective, ToySpace


def _ctx(tmp_path, name="run", **kw):
    return RunContext(device="cpu", seed=kw.pop("seed", 0), run_dir=tmp_path / name, progress=False, distributed=False, **kw)


def _data(n=64, size=8, seed=0):
    return TensorImages(fake_images(n, size, seed))


# ---------------------------------------------------------------------------------------------
# the search moves the architecture towards the known best operation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("unrolled", [False, True], ids=["first_order", "second_order"])
def test_darts_moves_alphas_towards_the_best_op(tmp_path, registry, unrolled):
    space = ToySpace(channels=4)
    strat = DartsSearch(epochs=6, batch_size=16, a_lr=0.02, w_lr=0.1, unrolled=unrolled)
    res = strat.run(space, ToyObjective(), _data(256), _ctx(tmp_path))
    first = torch.tensor(res.arch_weights_history[0]["cell"])
    final = torch.tensor(res.arch_weights["cell"])
    ident, noise = TOY_OPS.index("identity"), TOY_OPS.index("noise")
    assert str(res.best) == "identity-identity-identity"
    assert (final[:, ident] > 0.5).all(), final
    assert (final[:, noise] < 0.1).all(), final
    assert (final[:, ident] > first[:, ident]).all()
    # the alpha history holds one snapshot per epoch, of the softmaxed weights
    assert len(res.arch_weights_history) == 6
    assert torch.allclose(final.sum(-1), torch.ones(3))
    assert res.extra["op_names"] == {"cell": list(TOY_OPS)}
    assert res.extra["order"] == (2 if unrolled else 1)
    epochs = [h for h in res.history if "train_loss" in h]
    assert [h["epoch"] for h in epochs] == [0, 1, 2, 3, 4, 5]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]


def test_darts_on_fake_space_discretizes_and_records_history(tmp_path, registry):
    strat = create_strategy("darts", epochs=2, batch_size=8, steps_per_epoch=3)
    res = strat.run(FakeSpace(), FakeObjective(), _data(), _ctx(tmp_path))
    assert FakeSpace().parse(str(res.best)) == res.best
    assert res.strategy == "darts" and res.objective == "FakeObjective"
    steps = [r for r in _ctx_history(tmp_path) if r.get("kind") == "step"]
    assert len(steps) >= 1  # step 0 is always logged (log_every=10)
    assert len(res.arch_weights_history) == 2


def _ctx_history(tmp_path):
    import json

    return [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]


def test_partial_channel_supernet_trains_alphas_and_edge_betas(tmp_path, registry):
    space = ToySpace(channels=4, partial=2)
    sn = space.supernet()
    assert len(sn.arch_parameters()) == 2
    strat = DartsSearch(epochs=6, batch_size=16, a_lr=0.02, w_lr=0.1)
    res = strat.run(space, ToyObjective(), _data(256), _ctx(tmp_path))
    final = torch.tensor(res.arch_weights["cell"])
    assert "noise" not in str(res.best)
    assert (final[:, TOY_OPS.index("noise")] < 0.2).all(), final  # (the bypassed channels keep the colour)
    # the edge-normalisation parameters are architecture parameters too: they were trained
    edges = [torch.tensor(h["edges"]) for h in res.arch_weights_history]
    assert not torch.allclose(edges[-1], torch.full_like(edges[-1], 1 / 3), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# second order: a numerical check of the hypergradient on a tiny problem
# ---------------------------------------------------------------------------------------------
def _tiny_problem():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 4, generator=g, dtype=torch.float64)
    B = torch.randn(3, 4, generator=g, dtype=torch.float64)
    bt = torch.randn(3, generator=g, dtype=torch.float64)
    bv = torch.randn(3, generator=g, dtype=torch.float64)

    def l_train(w, a):
        p = F.softmax(a, 0)
        r = A @ w - bt
        return (p * (r**2 + 0.3 * torch.cos(2 * r))).sum() + 0.1 * (p[0] + 0.5) * (w**4).sum()

    def l_val(w, a):
        p = F.softmax(a, 0)
        r = B @ w - bv
        return (p * torch.log(1 + r**2)).sum() + 0.2 * p[1] * w.sum() ** 2

    w0 = torch.randn(4, generator=g, dtype=torch.float64)
    a0 = torch.randn(3, generator=g, dtype=torch.float64)
    buf = torch.randn(4, generator=g, dtype=torch.float64)
    return l_train, l_val, w0, a0, buf


@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 3e-4)])
def test_second_order_matches_numerical_hypergradient(momentum, wd):
    l_train, l_val, w0, a0, buf = _tiny_problem()
    lr = 0.1

    def unrolled_val_exact(a):  # F(alpha) = L_val(w - lr * (m * buf + dL_train/dw + wd * w), alpha)
        w = w0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(l_train(w, a), w, create_graph=True)
        w1 = w0 - lr * (momentum * buf + g + wd * w0)
        return l_val(w1, a)

    # central finite differences of F in float64
    h = 1e-6
    numeric = torch.zeros(3, dtype=torch.float64)
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = h
        numeric[i] = (unrolled_val_exact(a0 + e) - unrolled_val_exact(a0 - e)) / (2 * h)

    w = torch.nn.Parameter(w0.clone())
    a = torch.nn.Parameter(a0.clone())
    grads, _ = unrolled_arch_grads(
        lambda: l_train(w, a), lambda: l_val(w, a), [w], [a], lr=lr, momentum=momentum, weight_decay=wd,
        momentum_buffers=[buf], eps=0.01,
    )
    ours = grads[0]
    assert torch.equal(w.detach(), w0), "the weights must be restored"
    assert torch.allclose(ours, numeric, rtol=1e-4, atol=1e-7), (ours, numeric)
    # the check is sharp: the plain gradient of L_val at w' misses the implicit (second-order) term
    a_req = a0.clone().requires_grad_(True)
    direct = torch.autograd.grad(l_val(_virtual_step(l_train, w0, a0, lr, momentum, buf, wd), a_req), a_req)[0]
    assert (ours - direct).abs().max() > 100 * (ours - numeric).abs().max()


def _virtual_step(l_train, w0, a0, lr, momentum, buf, wd):
    w = w0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(l_train(w, a0), w)
    return w0 - lr * (momentum * buf + g + wd * w0)


def test_unrolled_with_zero_lr_is_first_order():
    l_train, l_val, w0, a0, _ = _tiny_problem()
    w, a = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(a0.clone())
    grads, val = unrolled_arch_grads(lambda: l_train(w, a), lambda: l_val(w, a), [w], [a], lr=0.0)
    (direct,) = torch.autograd.grad(l_val(w, a), [a])
    assert torch.allclose(grads[0], direct, rtol=1e-12, atol=1e-14)
    assert math.isclose(val, float(l_val(w0, a0)), rel_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# early stop on dominant skip connections (DARTS+)
# ---------------------------------------------------------------------------------------------
def test_early_stop_when_the_normal_cell_has_enough_skips(tmp_path, registry):
    # in the toy space 'identity' is the skip connection and wins: stop as soon as 2 edges pick it
    strat = DartsSearch(epochs=12, batch_size=16, a_lr=0.02, w_lr=0.1, max_skips=2, skip_ops=("identity",))
    res = strat.run(ToySpace(), ToyObjective(), _data(256), _ctx(tmp_path))
    stopped = res.extra["early_stopped_at"]
    assert stopped is not None and stopped < 11
    assert res.extra["epochs_run"] == stopped + 1
    assert len(res.arch_weights_history) == stopped + 1
    assert res.history[-1]["skips"] >= 2
    assert all(h["skips"] < 2 for h in res.history[:-1])


def test_count_skips_reads_the_normal_cell_of_genotypes():
    class Genotype:
        normal = [("skip_connect", 0), ("sep_conv_3x3", 1), ("skip_connect", 1), ("skip_connect", 2)]
        reduce = [("skip_connect", 0), ("max_pool_3x3", 1)]

        def __str__(self):
            return "Genotype(...)"

    assert count_skips(Genotype()) == 3
    assert count_skips(Genotype(), cell="reduce") == 1
    assert count_skips("|skip_connect~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|none~1|skip_connect~2|") == 3
    assert count_skips("skip-conv-skip", skip_ops=("skip",)) == 2


# ---------------------------------------------------------------------------------------------
# options, labels and failure modes
# ---------------------------------------------------------------------------------------------
def test_darts_needs_a_differentiable_space_and_an_objective(tmp_path, registry):
    class NoDiffSpace(FakeSpace):
        capabilities = frozenset({"single_path", "enumerable"})

    with pytest.raises(IncompatibleError, match="differentiable"):
        DartsSearch(epochs=1).run(NoDiffSpace(), FakeObjective(), _data(), _ctx(tmp_path))
    with pytest.raises(IncompatibleError, match="objective"):
        DartsSearch(epochs=1).run(FakeSpace(), FakeProxy(), _data(), _ctx(tmp_path, "b"))


@pytest.mark.parametrize(
    "opts,match",
    [({"epochs": 0}, "epochs"), ({"max_skips": 0}, "max_skips"), ({"warmup_epochs": 5, "epochs": 5}, "warmup"),
     ({"steps_per_epoch": 0}, "steps_per_epoch")],
)
def test_darts_rejects_bad_options(opts, match):
    with pytest.raises(ConfigError, match=match):
        DartsSearch(**opts)


def test_unknown_option_names_valid_ones(registry):
    with pytest.raises(ConfigError, match="unrolled"):
        create_strategy("darts", unroled=True)


def test_supervised_objective_gets_the_labels(tmp_path, registry):
    seen = []

    class Supervised(FakeObjective):
        requires_labels = True

        def loss(self, backbone, images, targets=None):
            seen.append(targets is not None and targets.shape[0] == images.shape[0])
            return super().loss(backbone, images, targets)

    imgs = fake_images(32, 8, 0)
    data = TensorImages(imgs, torch.arange(32) % 4, return_labels=True)
    DartsSearch(epochs=1, batch_size=8, steps_per_epoch=2).run(FakeSpace(), Supervised(), data, _ctx(tmp_path))
    assert seen and all(seen)


def test_nan_loss_stops_with_a_clear_error(tmp_path, registry):
    class Exploding(FakeObjective):
        def loss(self, backbone, images, targets=None):
            return super().loss(backbone, images) * float("nan")

    with pytest.raises(NonFiniteError, match="darts"):
        DartsSearch(epochs=1, batch_size=8).run(FakeSpace(), Exploding(), _data(), _ctx(tmp_path))


def test_warmup_freezes_the_alphas(tmp_path, registry):
    res = DartsSearch(epochs=2, batch_size=8, warmup_epochs=1, a_lr=0.05).run(ToySpace(), ToyObjective(), _data(), _ctx(tmp_path))
    h0, h1 = (torch.tensor(h["cell"]) for h in res.arch_weights_history)
    assert torch.allclose(h0, torch.full_like(h0, 1 / 3), atol=1e-3)  # the 1e-3 * randn initialisation
    assert (h1 - h0).abs().max() > 1e-2
