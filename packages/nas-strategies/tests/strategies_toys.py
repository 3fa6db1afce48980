"""Toy spaces, supernets, objectives and tables for the strategy tests (imported by the test modules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import (
    Architecture,
    ArchitectureError,
    BenchmarkTable,
    Cost,
    FeatureInfo,
    Objective,
    SearchSpace,
    Supernet,
    TableRow,
    forward_features,
    hookimpl,
)
from nas_core.testing import FakeArch, FakeSpace

TOY_OPS = ("zero", "noise", "identity")
EDGES = 3


@dataclass(frozen=True)
class ToyArch(Architecture):
    ops: tuple[str, ...]
    space: ClassVar[str] = "toy"

    def __str__(self) -> str:
        return "-".join(self.ops)

    @classmethod
    def parse(cls, text: str) -> ToyArch:
        ops = tuple(text.strip().split("-")) if text and text.strip() else ()
        if len(ops) != EDGES or any(o not in TOY_OPS for o in ops):
            raise ArchitectureError(f"toy architecture needs {EDGES} ops from {TOY_OPS}, got {text!r}")
        return cls(ops)

    __hash__ = Architecture.__hash__


class _Noise(nn.Module):
    """Replaces each sample by Gaussian noise: it carries no information, so the best op is 'identity'.

    The noise of a sample is drawn from a generator seeded by the sample's values, so a run that splits a
    batch across ranks sees exactly the noise of a single-process run."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for xi in x.detach():
            g = torch.Generator().manual_seed(int(abs(float(xi.double().sum())) * 1e6) % (2**31))
            out.append(torch.randn(xi.shape, generator=g, dtype=x.dtype))
        return torch.stack(out).to(x.device)


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0


class ToySupernet(Supernet):
    """Edge ``e`` carries colour channel ``e`` only (a grouped 1x1 stem), through a softmax-mixed
    {zero, noise, identity}; the features are the edges' outputs side by side. Losing an edge (zero) loses
    that colour, noise hides it: 'identity' is the best op on every edge.

    ``partial=k`` sends only 1/k of each edge's channels through the mixed op (PC-DARTS) and adds
    edge-normalisation parameters ``betas`` (a softmax over edges that scales each edge's output)."""

    capabilities = frozenset({"differentiable", "single_path"})

    def __init__(self, chs: int = 4, partial: int = 1):
        super().__init__()
        self.chs, self.partial = chs, partial
        self.stem = nn.Conv2d(3, EDGES * chs, 1, groups=3)
        self.ops = nn.ModuleDict({"zero": _Zero(), "noise": _Noise(), "identity": nn.Identity()})
        self.alphas = nn.Parameter(1e-3 * torch.randn(EDGES, len(TOY_OPS)))  # as DARTS initialises them
        self.betas = nn.Parameter(1e-3 * torch.randn(EDGES)) if partial > 1 else None
        self.feature_info = FeatureInfo([{"num_chs": EDGES * chs, "reduction": 1, "module": "stem"}])
        self._active: ToyArch | None = None

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas] + ([self.betas] if self.betas is not None else [])

    def arch_weights(self) -> dict[str, torch.Tensor]:
        out = {"cell": F.softmax(self.alphas.detach(), -1).cpu()}
        if self.betas is not None:
            out["edges"] = F.softmax(self.betas.detach(), -1).cpu()[None]
        return out

    def op_names(self) -> dict[str, Any]:
        return {"cell": list(TOY_OPS)}

    def discretize(self) -> ToyArch:
        return ToyArch(tuple(TOY_OPS[i] for i in self.alphas.argmax(-1).tolist()))

    def set_active(self, arch: Architecture | None) -> None:
        self._active = None if arch is None else ToyArch.parse(str(arch))

    def _mixed(self, e: int, h: torch.Tensor) -> torch.Tensor:
        w = F.softmax(self.alphas[e], -1)
        if self.partial > 1:
            k = self.chs // self.partial
            a, b = h[:, :k], h[:, k:]
            mixed = sum(w[i] * self.ops[o](a) for i, o in enumerate(TOY_OPS))
            out = torch.cat([mixed, b], 1)
            n, c, hh, ww = out.shape  # channel shuffle
            return out.view(n, self.partial, c // self.partial, hh, ww).transpose(1, 2).reshape(n, c, hh, ww)
        return sum(w[i] * self.ops[o](h) for i, o in enumerate(TOY_OPS))

    def forward(self, x: torch.Tensor, *, arch: Architecture | None = None, mask: Any = None) -> list[torch.Tensor]:
        groups = self.stem(x).split(self.chs, 1)
        a = ToyArch.parse(str(arch)) if arch is not None else self._active
        if a is not None:
            return [torch.cat([self.ops[o](g) for o, g in zip(a.ops, groups)], 1)]
        outs = [self._mixed(e, g) for e, g in enumerate(groups)]
        if self.betas is not None:
            eb = F.softmax(self.betas, -1) * EDGES
            outs = [eb[e] * o for e, o in enumerate(outs)]
        return [torch.cat(outs, 1)]


class ToySpace(SearchSpace):
    """27 architectures; a differentiable supernet whose best operation is known ('identity')."""

    name = "toy"
    capabilities = frozenset({"differentiable", "single_path", "enumerable"})

    def __init__(self, channels: int = 4, partial: int = 1):
        self.channels, self.partial = channels, partial
        self.num_classes = 10

    def config(self) -> dict[str, Any]:
        return {"channels": self.channels, "partial": self.partial}

    def parse(self, text: str) -> ToyArch:
        return ToyArch.parse(text)

    def sample(self, rng: np.random.Generator) -> ToyArch:
        return ToyArch(tuple(TOY_OPS[int(i)] for i in rng.integers(0, 3, EDGES)))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> ToyArch:
        a = ToyArch.parse(str(arch))
        e = int(rng.integers(EDGES))
        ops = list(a.ops)
        ops[e] = [o for o in TOY_OPS if o != ops[e]][int(rng.integers(2))]
        return ToyArch(tuple(ops))

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> ToyArch:
        pa, pb = ToyArch.parse(str(a)), ToyArch.parse(str(b))
        return ToyArch(tuple(x if rng.random() < 0.5 else y for x, y in zip(pa.ops, pb.ops)))

    def encode(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        return FakeSpace().encode(FakeArch(tuple({"zero": "zero", "noise": "conv", "identity": "skip"}[o] for o in ToyArch.parse(str(arch)).ops)))

    def decode(self, adjacency: np.ndarray, ops: np.ndarray) -> ToyArch | None:
        fa = FakeSpace().decode(adjacency, ops)
        if fa is None:
            return None
        return ToyArch(tuple({"zero": "zero", "conv": "noise", "skip": "identity"}[o] for o in fa.ops))

    def build(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        sn = ToySupernet(self.channels)
        sn.set_active(arch)
        return sn

    def supernet(self, **cfg: Any) -> ToySupernet:
        return ToySupernet(cfg.get("channels", self.channels), cfg.get("partial", self.partial))

    def cost(self, arch: Architecture) -> Cost:
        a = ToyArch.parse(str(arch))
        return Cost(params=3 * self.channels + self.channels, flops=100 + sum(o != "zero" for o in a.ops))

    def enumerate(self) -> Iterator[ToyArch]:
        for i in range(27):
            yield ToyArch(tuple(TOY_OPS[(i // 3**e) % 3] for e in range(EDGES)))


def fake_table(members: list[str] | None = None, seed: int = 0) -> BenchmarkTable:
    """A benchmark table over FakeSpace architectures (all 27, or ``members``): accuracy rises with the number
    of 'conv' edges (plus a small seeded jitter); proxies 'convs' (informative), 'noise' (random) and a
    'partial' proxy missing on some rows."""
    space = FakeSpace()
    archs = members if members is not None else [str(a) for a in space.enumerate()]
    rng = np.random.default_rng(seed)
    rows = []
    for i, a in enumerate(archs):
        ops = a.split("-")
        convs = ops.count("conv")
        skips = ops.count("skip")
        acc = 60.0 + 10.0 * convs + 2.0 * skips + float(rng.normal(0, 0.3))
        proxies = {"convs": float(convs + 0.1 * skips), "noise": float(rng.normal())}
        if i % 3:
            proxies["partial"] = float(convs)
        rows.append(TableRow(arch=a, val_accuracy=acc, proxies=proxies))
    return BenchmarkTable(rows, meta={"dataset": "fake"}, source="fake_table")


class ToyObjective(Objective):
    """Scale- and sign-invariant reconstruction: ``1 - cos^2(head(features), image)`` over the per-channel
    centred images (only the patterns count, not the mean colour). On :class:`ToySpace` an edge that drops or
    hides its colour channel loses that channel's pattern: 'identity' is the best op on every edge."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList()

    def build_heads(self, feature_info: FeatureInfo) -> None:
        self.heads = nn.ModuleList(nn.Conv2d(c, self.in_chans, 1) for c in feature_info.channels())

    def _cos(self, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
        feats = forward_features(backbone, images)
        recon = sum(
            F.interpolate(h(f), size=images.shape[-2:], mode="bilinear", align_corners=False) for f, h in zip(feats, self.heads)
        )
        def centred(t: torch.Tensor) -> torch.Tensor:  # per image and channel: only the patterns count
            return (t - t.mean((2, 3), keepdim=True)).flatten(1)

        return F.cosine_similarity(centred(recon), centred(images), dim=1, eps=1e-6)

    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return 1.0 - self._cos(backbone, images).pow(2).mean()

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        torch.manual_seed(0)
        return float(self._cos(backbone, images).pow(2).mean())


# ---------------------------------------------------------------------------------------------
# interrupt-and-resume harness
# ---------------------------------------------------------------------------------------------
class Interrupted(Exception):
    """Raised by :class:`InterruptAt` from a lifecycle hook to simulate a crash mid-run."""


class InterruptAt:
    """A plugin whose ``nas_epoch_end`` hook raises at epoch ``epoch`` (a crash in the middle of a run)."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.seen: list[int] = []

    @hookimpl
    def nas_epoch_end(self, context: Any, epoch: int, metrics: Any) -> None:
        self.seen.append(epoch)
        if epoch == self.epoch:
            raise Interrupted(f"interrupted at epoch {epoch}")


def comparable(result: Any) -> dict[str, Any]:
    """A result's JSON without what legitimately differs between runs: versions and wall-clock seconds."""
    js = result.to_json()
    js.pop("versions", None)
    js.get("extra", {}).pop("seconds", None)
    return js


def resume_equals_uninterrupted(make_strategy: Any, space: Any, make_evaluator: Any, data: Any, tmp_path: Any, *, at: int, seed: int = 0) -> tuple[Any, Any]:
    """Run once uninterrupted; run again with a hook raising at epoch ``at``; resume the crashed run in its run
    directory. Returns (uninterrupted result, resumed result) after checking the crash really happened."""
    import pytest

    from nas_core import NasPluginManager, RunContext

    def ctx(run_dir: Any, pm: Any, resume: bool = False) -> Any:
        return RunContext(device="cpu", seed=seed, run_dir=run_dir, resume=resume, progress=False, distributed=False, plugin_manager=pm)

    full = make_strategy().run(space, make_evaluator(), data, ctx(tmp_path / "full", NasPluginManager(autoload=False)))
    crash_pm = NasPluginManager(autoload=False)
    interrupt = InterruptAt(at)
    crash_pm.register_plugin(interrupt, "interrupt")
    with pytest.raises(Interrupted):
        make_strategy().run(space, make_evaluator(), data, ctx(tmp_path / "crash", crash_pm))
    assert interrupt.seen and interrupt.seen[-1] == at
    assert (tmp_path / "crash" / "checkpoint.pt").exists() and not (tmp_path / "crash" / "result.json").exists()
    resumed = make_strategy().run(space, make_evaluator(), data, ctx(tmp_path / "crash", NasPluginManager(autoload=False), resume=True))
    return full, resumed
