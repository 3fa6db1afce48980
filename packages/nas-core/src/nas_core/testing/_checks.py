"""Contract suites. Each package runs them over every name it registers (timm-style), so a new
space/objective/strategy/proxy is covered without writing new tests.

Every check raises ``AssertionError`` with a message naming the contract clause that broke.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from .._arch import CAPABILITIES, Architecture, Cost, SearchSpace
from .._context import RunContext
from .._compat import check_compatible
from .._contracts import Objective, Proxy, Strategy, Supernet, forward_features
from .._errors import ArchitectureError, IncompatibleError, NasError
from .._features import FeatureInfo
from .._markers import hookimpl
from .._plugins import NasPluginManager
from .._result import SearchResult
from ._fakes import FakeBackbone, FakeObjective, FakeProxy, FakeSpace, fake_images

__all__ = ["check_space", "check_objective", "check_strategy", "check_proxy", "check_feature_info", "snapshot_module", "assert_module_unchanged"]


def _fail(clause: str, detail: str) -> AssertionError:
    return AssertionError(f"contract '{clause}' broken: {detail}")


def check_feature_info(module: nn.Module, feats: list[torch.Tensor], img_size: int) -> None:
    """Features must match ``feature_info``: count, channels and spatial size (input / reduction)."""
    fi = getattr(module, "feature_info", None)
    if fi is None:
        raise _fail("feature_info", f"{type(module).__name__} has no feature_info")
    fi = FeatureInfo.coerce(fi)
    if len(feats) != len(fi):
        raise _fail("feature_info", f"forward returned {len(feats)} feature maps, feature_info describes {len(fi)}")
    for i, (f, st) in enumerate(zip(feats, fi)):
        if f.dim() != 4:
            raise _fail("feature_info", f"stage {i} output has shape {tuple(f.shape)}, expected NCHW")
        if f.shape[1] != st["num_chs"]:
            raise _fail("feature_info", f"stage {i} has {f.shape[1]} channels, feature_info says {st['num_chs']}")
        expect = img_size // st["reduction"]
        if tuple(f.shape[-2:]) != (expect, expect):
            raise _fail(
                "feature_info",
                f"stage {i} is {tuple(f.shape[-2:])} for a {img_size}x{img_size} input, reduction {st['reduction']} "
                f"means {expect}x{expect}",
            )


def _check_value(space: SearchSpace, arch: Architecture) -> None:
    if not isinstance(arch, Architecture):
        raise _fail("Architecture", f"space returned {type(arch).__name__}, not an Architecture")
    text = str(arch)
    if not isinstance(text, str) or not text:
        raise _fail("Architecture.__str__", f"empty string form for {arch!r}")
    back = space.parse(text)
    if back != arch or hash(back) != hash(arch) or str(back) != text:
        raise _fail("string round-trip", f"parse(str(a)) != a for {text}")
    js = json.loads(json.dumps(arch.to_json()))
    if space.parse(js["arch"]) != arch:
        raise _fail("JSON round-trip", f"to_json() does not round-trip for {text}")
    if dataclasses.is_dataclass(arch):
        field_name = dataclasses.fields(arch)[0].name
        try:
            setattr(arch, field_name, None)
        except (dataclasses.FrozenInstanceError, AttributeError):
            pass
        else:
            raise _fail("immutability", f"{type(arch).__name__}.{field_name} can be assigned")


def check_space(
    space: SearchSpace,
    *,
    seed: int = 0,
    samples: int = 6,
    img_size: int = 32,
    batch: int = 2,
    num_classes: int = 10,
    build: bool = True,
    supernet_kwargs: dict[str, Any] | None = None,
    check_cost_params: bool = True,
    bad_strings: tuple[str, ...] = ("", "not an architecture"),
) -> None:
    """The search-space contract: values, operators, encoding, networks, supernet, cost."""
    archs = _check_sampling(space, seed, samples)
    _check_parse_errors(space, bad_strings)
    rng = np.random.default_rng(seed + 1)
    for a in archs:
        _check_operators(space, a, archs[0], rng)
        _check_encoding(space, a)
    _check_invalid_decode_and_mutation(space, archs[0], rng)
    _check_enumerate(space)
    _check_cost(space, archs[:2])
    if not build:
        return
    x = fake_images(batch, img_size, seed)
    for a in archs[:2]:
        _check_networks(space, a, x, seed=seed, num_classes=num_classes, check_cost_params=check_cost_params)
    sn = space.supernet(**(supernet_kwargs or {}))
    _check_supernet(space, sn, x, archs[0])


def _check_sampling(space: SearchSpace, seed: int, samples: int) -> list[Architecture]:
    rng1, rng2 = np.random.default_rng(seed), np.random.default_rng(seed)
    archs = [space.sample(rng1) for _ in range(samples)]
    if [str(a) for a in archs] != [str(space.sample(rng2)) for _ in range(samples)]:
        raise _fail("sample(rng)", "the same seed gave different architectures")
    if not set(space.capabilities) <= CAPABILITIES:
        raise _fail("capabilities", f"unknown capability in {sorted(space.capabilities)} (known: {sorted(CAPABILITIES)})")
    return archs


def _check_parse_errors(space: SearchSpace, bad_strings: tuple[str, ...]) -> None:
    for bad in bad_strings:
        try:
            space.parse(bad)
        except ArchitectureError as exc:
            if not str(exc):
                raise _fail("parse errors", f"empty error message for {bad!r}") from exc
        else:
            raise _fail("parse errors", f"parse({bad!r}) did not raise ArchitectureError")


def _check_operators(space: SearchSpace, a: Architecture, other: Architecture, rng: np.random.Generator) -> None:
    _check_value(space, a)
    before = str(a)
    _check_value(space, space.mutate(a, rng))
    if str(a) != before:
        raise _fail("mutate returns a new value", "the parent changed")
    _check_value(space, space.crossover(a, other, rng))


def _check_encoding(space: SearchSpace, a: Architecture) -> None:
    adj, ops = space.encode(a)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or ops.ndim != 2 or ops.shape[0] != adj.shape[0]:
        raise _fail("encode", f"shapes adjacency {adj.shape}, ops {ops.shape}: expected [N, N] and [N, K]")
    if not np.allclose(ops.sum(-1), 1) or not set(np.unique(ops)) <= {0, 1}:
        raise _fail("encode", "ops is not one-hot per node")
    if np.any(np.tril(adj) != 0):
        raise _fail("encode", "adjacency is not upper-triangular")
    dec = space.decode(adj, ops)
    if dec != a:
        raise _fail("decode(encode(a)) == a", f"got {dec} for {a}")


def _check_invalid_decode_and_mutation(space: SearchSpace, arch: Architecture, rng: np.random.Generator) -> None:
    adj, ops = space.encode(arch)
    if space.decode(adj, np.zeros_like(ops)) is not None:
        raise _fail("decode returns None when invalid", "an all-zero op matrix decoded to an architecture")
    mutated = [space.mutate(arch, rng) for _ in range(8)]
    if all(m == arch for m in mutated):
        raise _fail("mutate", "8 mutations all returned the parent")


def _check_enumerate(space: SearchSpace, limit: int = 2000) -> None:
    if "enumerable" not in space.capabilities:
        return
    seen = set()
    for i, a in enumerate(space.enumerate()):
        if i >= limit:
            break
        s = str(a)
        if s in seen:
            raise _fail("enumerate", f"{s} enumerated twice")
        seen.add(s)


def _check_cost(space: SearchSpace, archs: list[Architecture]) -> None:
    for a in archs:
        cost = space.cost(a)
        if not isinstance(cost, Cost) or cost.params <= 0 or cost.flops <= 0:
            raise _fail("cost", f"cost({a}) = {cost!r}; expected a Cost with positive params and flops")


def _check_networks(space: SearchSpace, a: Architecture, x: torch.Tensor, *, seed: int, num_classes: int,
                    check_cost_params: bool) -> None:
    """The standalone networks of ``a``: features as described, logits of the right shape, counted params."""
    img_size, batch = int(x.shape[-1]), int(x.shape[0])
    torch.manual_seed(seed)
    net = space.build(a, num_classes=None)
    net.eval()
    with torch.no_grad():
        feats = forward_features(net, x)
    check_feature_info(net, feats, img_size)
    clf = space.build(a, num_classes=num_classes)
    clf.eval()
    with torch.no_grad():
        logits = clf(x)
        feats2 = forward_features(clf, x)
    if tuple(logits.shape) != (batch, num_classes):
        raise _fail("build(num_classes)", f"logits have shape {tuple(logits.shape)}, expected {(batch, num_classes)}")
    check_feature_info(clf, feats2, img_size)
    if check_cost_params:
        n_clf = sum(p.numel() for p in space.build(a, num_classes=getattr(space, "num_classes", num_classes)).parameters())
        if space.cost(a).params != n_clf:
            raise _fail("cost.params", f"cost({a}).params = {space.cost(a).params} but the built network has {n_clf}")


def _check_supernet(space: SearchSpace, sn: Any, x: torch.Tensor, arch: Architecture) -> None:
    img_size = int(x.shape[-1])
    if not isinstance(sn, Supernet):
        raise _fail("supernet", f"supernet() returned {type(sn).__name__}, not a nas_core.Supernet")
    missing = {"differentiable", "single_path"} & set(space.capabilities) - set(sn.capabilities)
    if missing:
        raise _fail("supernet capabilities", f"the space declares {sorted(missing)} but its supernet does not")
    sn.train()
    feats = sn(x)
    check_feature_info(sn, feats, img_size)
    if "differentiable" in sn.capabilities:
        _check_differentiable(space, sn, feats)
    if "single_path" in sn.capabilities:
        sn.eval()
        with torch.no_grad():
            sn.set_active(arch)
            f_active = sn(x)
            f_arg = sn(x, arch=arch)
        check_feature_info(sn, f_active, img_size)
        for u, v in zip(f_active, f_arg):
            if not torch.allclose(u, v, atol=1e-5):
                raise _fail("single_path", "forward(x, arch=a) differs from set_active(a); forward(x)")


def _check_differentiable(space: SearchSpace, sn: Supernet, feats: list[torch.Tensor]) -> None:
    alphas = sn.arch_parameters()
    if not alphas:
        raise _fail("differentiable", "arch_parameters() is empty")
    sum(f.float().mean() for f in feats).backward()
    if all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in alphas):
        raise _fail("differentiable", "no gradient reaches the architecture parameters")
    arch_ids = {id(p) for p in alphas}
    if any(id(p) in arch_ids for p in sn.weight_parameters()):
        raise _fail("differentiable", "weight_parameters() includes architecture parameters")
    _check_value(space, sn.discretize())
    if not sn.arch_weights():
        raise _fail("differentiable", "arch_weights() is empty")


def check_objective(
    objective_factory: Callable[[], Objective],
    *,
    backbone: nn.Module | None = None,
    img_size: int = 16,
    batch: int = 4,
    steps: int = 30,
    lr: float = 3e-3,
    check_learning: bool = True,
    images: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
) -> None:
    """The objective contract on both pyramid kinds: heads from feature_info, finite loss with
    gradient to backbone and heads, repeatable score, a loss that falls when trained."""
    backbones = [backbone] if backbone is not None else [FakeBackbone("cnn"), FakeBackbone("vit")]
    x = images if images is not None else fake_images(batch, img_size, 0)
    img_size = x.shape[-1]
    for bb in backbones:
        torch.manual_seed(0)
        obj = objective_factory()
        if not isinstance(obj, Objective):
            raise _fail("Objective", f"factory returned {type(obj).__name__}, not a nas_core.Objective")
        try:
            obj.loss(bb, x, targets)
        except NasError:
            pass
        except Exception as exc:  # noqa: BLE001
            raise _fail("setup first", f"loss() before setup() raised {type(exc).__name__} instead of a NasError: {exc}") from exc
        else:
            raise _fail("setup first", "loss() before setup() did not raise")
        obj.setup(bb.feature_info, in_chans=3, img_size=img_size)
        if obj.requires_labels:
            try:
                obj.loss(bb, x, None)
            except NasError as exc:
                if "label" not in str(exc).lower():
                    raise _fail("requires_labels", f"the error without targets does not mention labels: {exc}") from exc
            else:
                raise _fail("requires_labels", "loss() without targets did not raise")
            if targets is None:
                targets = torch.arange(x.shape[0]) % 4
        obj.train()
        bb.train()
        loss = obj.loss(bb, x, targets)
        if loss.dim() != 0 or not torch.isfinite(loss):
            raise _fail("loss", f"expected a finite scalar, got shape {tuple(loss.shape)} value {loss.detach()}")
        loss.backward()
        if all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in bb.parameters()):
            raise _fail("loss", "no gradient reaches the backbone")
        heads = [p for p in obj.parameters() if p.requires_grad]
        if heads and all(p.grad is None for p in heads):
            raise _fail("loss", "no gradient reaches the objective's own heads")
        bb.zero_grad(set_to_none=True)
        obj.zero_grad(set_to_none=True)
        s1, s2 = obj.score(bb, x), obj.score(bb, x)
        if not isinstance(s1, float) or not math.isfinite(s1):
            raise _fail("score", f"expected a finite float, got {s1!r}")
        if s1 != s2:
            raise _fail("score is repeatable", f"two calls gave {s1} and {s2}")
        if check_learning:
            params = list(bb.parameters()) + [p for p in obj.parameters() if p.requires_grad]
            opt = torch.optim.Adam(params, lr=lr)
            losses = []
            for _ in range(steps):
                loss = obj.loss(bb, x, targets)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            k = max(1, steps // 5)
            first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
            if not last < first:
                raise _fail("loss falls", f"mean of the first {k} steps {first:.4f}, of the last {k} {last:.4f}")


def snapshot_module(net: nn.Module) -> dict[str, Any]:
    """Everything a proxy must leave untouched: state (weights, BN stats), grads, flags, mode."""
    return {
        "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "requires_grad": {n: p.requires_grad for n, p in net.named_parameters()},
        "grad": {n: None if p.grad is None else p.grad.detach().clone() for n, p in net.named_parameters()},
        "training": {n: m.training for n, m in net.named_modules()},
        "dtype": {n: p.dtype for n, p in net.named_parameters()},
    }


def assert_module_unchanged(before: dict[str, Any], net: nn.Module, who: str = "proxy") -> None:
    after = snapshot_module(net)
    for k, v in before["state"].items():
        w = after["state"][k]
        if v.dtype != w.dtype or not torch.equal(v, w):
            raise _fail("leaves the network unchanged", f"{who} modified '{k}'")
    for key in ("requires_grad", "training", "dtype"):
        if before[key] != after[key]:
            diff = [n for n in before[key] if before[key][n] != after[key].get(n)]
            raise _fail("leaves the network unchanged", f"{who} changed {key} of {diff[:3]}")
    for n, g in before["grad"].items():
        h = after["grad"][n]
        if (g is None) != (h is None) or (g is not None and not torch.equal(g, h)):
            raise _fail("leaves the network unchanged", f"{who} left gradients on '{n}'")


def check_proxy(
    proxy: Proxy,
    *,
    space: SearchSpace | None = None,
    arch: Architecture | None = None,
    img_size: int = 16,
    batch: int = 8,
    num_classes: int = 10,
    seed: int = 0,
) -> None:
    """The proxy contract: finite float, deterministic for a seed, network left exactly as found,
    label-free path through ``loss_fn`` when the proxy needs a loss."""
    space = space or FakeSpace()
    arch = arch or space.sample(np.random.default_rng(seed))
    for flag in ("higher_is_better", "needs_targets", "data_free"):
        if not isinstance(getattr(proxy, flag, None), bool):
            raise _fail("metadata", f"{type(proxy).__name__}.{flag} must be a bool")
    torch.manual_seed(seed)
    net = space.build(arch, num_classes=num_classes)
    net.train()
    x = fake_images(batch, img_size, seed)
    y = torch.arange(batch) % num_classes
    before = snapshot_module(net)

    objective = FakeObjective()
    objective.setup(net.feature_info, in_chans=3, img_size=img_size)

    def loss_fn(m: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return objective.loss(m, images)

    def run() -> float:
        torch.manual_seed(seed)
        return proxy.score(net, x, y if proxy.needs_targets else None, loss_fn=loss_fn)

    s1 = run()
    assert_module_unchanged(before, net, type(proxy).__name__)
    if not isinstance(s1, float) or not math.isfinite(s1):
        raise _fail("score", f"expected a finite float, got {s1!r}")
    s2 = run()
    if s1 != s2:
        raise _fail("deterministic for a fixed seed", f"{s1} != {s2}")
    if getattr(proxy, "needs_loss", False) and not proxy.needs_targets:
        torch.manual_seed(seed)
        supervised = proxy.score(net, x, y, loss_fn=None)
        if not math.isfinite(float(supervised)):
            raise _fail("supervised form", f"score with targets is {supervised}")
        assert_module_unchanged(before, net, type(proxy).__name__)
    net.eval()
    before_eval = snapshot_module(net)
    run()
    assert_module_unchanged(before_eval, net, type(proxy).__name__ + " (eval mode)")


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def nas_run_start(self, context: Any) -> None:
        self.calls.append("start")

    @hookimpl
    def nas_epoch_end(self, context: Any, epoch: int, metrics: Any) -> None:
        self.calls.append("epoch")

    @hookimpl
    def nas_candidate_evaluated(self, context: Any, arch: Any, scores: Any) -> None:
        self.calls.append("candidate")

    @hookimpl
    def nas_run_end(self, context: Any, result: Any) -> None:
        self.calls.append("end")


class _UntouchableData:
    """Data an incompatible run must never read: it records any access."""

    has_labels = False

    def __init__(self) -> None:
        self.touched = False

    def __len__(self) -> int:
        self.touched = True
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        self.touched = True
        return fake_images(1, 16, 0)[0]


def _check_refused_before_compute(strategy_factory: Callable[[], Strategy], bad_space: SearchSpace, bad_eval: Any,
                                  *, seed: int) -> None:
    """``check_compatible`` refuses the pair, and so does ``run()``, before any hook fires or any data is read."""
    label = f"{type(bad_space).__name__} with {type(bad_eval).__name__}"
    try:
        check_compatible(strategy_factory(), bad_space, bad_eval)
    except IncompatibleError as exc:
        if not str(exc):
            raise _fail("incompatible combinations", "empty message") from exc
    else:
        raise _fail("incompatible combinations", f"check_compatible accepted {label}")
    rec = _Recorder()
    pm = NasPluginManager(autoload=False)
    pm.register_plugin(rec, "recorder")
    ctx = RunContext(device="cpu", seed=seed, run_dir=None, plugin_manager=pm, progress=False, distributed=False)
    data = _UntouchableData()
    try:
        strategy_factory().run(bad_space, bad_eval, data, ctx)
    except IncompatibleError:
        pass
    else:
        raise _fail("incompatible combinations", f"run() accepted {label}")
    if rec.calls or data.touched:
        raise _fail("incompatible combinations refused before compute",
                    f"run() started ({'hooks ' + ', '.join(rec.calls) if rec.calls else 'read the data'}) before refusing {label}")


def check_strategy(
    strategy_factory: Callable[[], Strategy],
    *,
    space: SearchSpace | None = None,
    evaluator_factory: Callable[[], Any] | None = None,
    data: Any = None,
    run_dir: str | Path | None = None,
    seed: int = 0,
    incompatible: tuple[SearchSpace, Any] | None = None,
) -> SearchResult:
    """The strategy contract: a valid, round-tripping SearchResult; the same result for the same seed;
    lifecycle hooks called; ``incompatible`` (a space and an evaluator the strategy cannot combine) refused by
    ``check_compatible`` and by ``run()`` before any compute."""
    from .._data import TensorImages

    space = space or FakeSpace()
    evaluator_factory = evaluator_factory or FakeObjective
    data = data if data is not None else TensorImages(fake_images(32, 16, seed))
    results = []
    for i in range(2):
        rec = _Recorder()
        pm = NasPluginManager(autoload=False)
        pm.register_plugin(rec, "recorder")
        rd = None if run_dir is None else Path(run_dir) / f"run{i}"
        ctx = RunContext(device="cpu", seed=seed, run_dir=rd, plugin_manager=pm, progress=False, distributed=False)
        strategy = strategy_factory()
        if not isinstance(strategy, Strategy):
            raise _fail("Strategy", f"factory returned {type(strategy).__name__}, not a nas_core.Strategy")
        res = strategy.run(space, evaluator_factory(), data, ctx)
        if not isinstance(res, SearchResult):
            raise _fail("run() returns a SearchResult", f"got {type(res).__name__}")
        if rec.calls[:1] != ["start"] or rec.calls[-1:] != ["end"]:
            raise _fail("lifecycle hooks", f"expected start ... end, got {rec.calls}")
        _check_value(space, res.best)
        fits = [c.fitness for c in res.candidates if not math.isnan(c.fitness)]
        if fits != sorted(fits, reverse=True):
            raise _fail("candidates ranked best first", f"fitness order {fits}")
        json.dumps(res.to_json())
        back = SearchResult.from_json(res.to_json(), space)
        if back.best != res.best:
            raise _fail("SearchResult JSON round-trip", f"{back.best} != {res.best}")
        if rd is not None and not (rd / "result.json").exists():
            raise _fail("result.json", f"no result.json in {rd}")
        results.append(res)
    if str(results[0].best) != str(results[1].best) or [str(c.arch) for c in results[0].candidates] != [
        str(c.arch) for c in results[1].candidates
    ]:
        raise _fail("deterministic for a seed", f"{results[0].best} vs {results[1].best}")
    if incompatible is not None:
        _check_refused_before_compute(strategy_factory, *incompatible, seed=seed)
    return results[0]

