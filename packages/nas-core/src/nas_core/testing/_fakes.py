"""Tiny fakes that honour every contract: a 3-edge cell space with a differentiable and single-path
supernet, a reconstruction objective, a random-search strategy and two proxies.

They are small enough for unit tests of other packages (a forward pass on 16x16 images takes a
millisecond) and real enough that a broken strategy or objective shows up against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._arch import Architecture, Cost, SearchSpace
from .._context import RunContext
from .._compat import check_compatible
from .._contracts import LossFn, Objective, Proxy, Strategy, Supernet, evaluator_kind, forward_features
from .._errors import ArchitectureError, ConfigError
from .._features import FeatureInfo
from .._markers import hookimpl
from .._preserve import preserved_state
from .._result import Candidate, SearchResult

__all__ = [
    "FAKE_OPS",
    "FakeArch",
    "FakeSpace",
    "FakeSupernet",
    "FakeNet",
    "FakeBackbone",
    "FakeObjective",
    "FakeStrategy",
    "FakeProxy",
    "FakeGradProxy",
    "FakePlugin",
    "fake_images",
]

FAKE_OPS: tuple[str, ...] = ("zero", "skip", "conv")
NUM_EDGES = 3


@dataclass(frozen=True, eq=True)
class FakeArch(Architecture):
    """Three edges, one op each: ``"conv-skip-zero"``."""

    ops: tuple[str, ...]
    space: ClassVar[str] = "fake"

    def __post_init__(self) -> None:
        if len(self.ops) != NUM_EDGES:
            raise ArchitectureError(f"fake architecture needs {NUM_EDGES} ops, got {len(self.ops)}: {self.ops}")
        for i, op in enumerate(self.ops):
            if op not in FAKE_OPS:
                raise ArchitectureError(f"fake architecture: edge {i} has unknown op '{op}' (valid: {', '.join(FAKE_OPS)})")

    def __str__(self) -> str:
        return "-".join(self.ops)

    @classmethod
    def parse(cls, text: str) -> FakeArch:
        if not isinstance(text, str) or not text.strip():
            raise ArchitectureError(f"fake architecture string is empty: {text!r}")
        return cls(tuple(text.strip().split("-")))

    __hash__ = Architecture.__hash__


def _op(name: str, chs: int) -> nn.Module:
    if name == "zero":
        return _Zero()
    if name == "skip":
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(chs, chs, 3, padding=1, bias=False), nn.BatchNorm2d(chs), nn.ReLU())


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class _Stages(nn.Module):
    """stem -> stage 0 (cell, reduction 2) -> stage 1 (cell after a stride-2 conv, reduction 4)."""

    def __init__(self, chs: int, in_chans: int = 3):
        super().__init__()
        self.chs = chs
        self.stem = nn.Sequential(nn.Conv2d(in_chans, chs, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(chs), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(chs, 2 * chs, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * chs), nn.ReLU())
        self.feature_info = FeatureInfo(
            [
                {"num_chs": chs, "reduction": 2, "module": "cell0"},
                {"num_chs": 2 * chs, "reduction": 4, "module": "cell1"},
            ]
        )


class FakeNet(_Stages):
    """Standalone network of a :class:`FakeArch`: each stage is ``x + sum(op_e(x))``."""

    def __init__(self, arch: FakeArch, chs: int = 4, num_classes: int | None = None):
        super().__init__(chs)
        self.arch = arch
        self.cell0 = nn.ModuleList(_op(o, chs) for o in arch.ops)
        self.cell1 = nn.ModuleList(_op(o, 2 * chs) for o in arch.ops)
        self.num_classes = num_classes
        self.head = nn.Linear(2 * chs, num_classes) if num_classes else None

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(x)
        f0 = h + sum(op(h) for op in self.cell0)
        h = self.down(f0)
        f1 = h + sum(op(h) for op in self.cell1)
        return [f0, f1]

    def forward(self, x: torch.Tensor) -> Any:
        feats = self.forward_features(x)
        if self.head is None:
            return feats
        return self.head(feats[-1].mean((2, 3)))


class FakeSupernet(Supernet):
    """Every op on every edge; softmax-mixed (differentiable) or one op per edge (single path)."""

    capabilities = frozenset({"differentiable", "single_path"})

    def __init__(self, chs: int = 4):
        super().__init__()
        self.base = _Stages(chs)
        self.feature_info = self.base.feature_info
        self.cell0 = nn.ModuleList(nn.ModuleDict({o: _op(o, chs) for o in FAKE_OPS}) for _ in range(NUM_EDGES))
        self.cell1 = nn.ModuleList(nn.ModuleDict({o: _op(o, 2 * chs) for o in FAKE_OPS}) for _ in range(NUM_EDGES))
        self.alphas = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, len(FAKE_OPS)))
        self._active: FakeArch | None = None

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        return {"cell": F.softmax(self.alphas.detach(), dim=-1).cpu()}

    def op_names(self) -> dict[str, Any]:
        return {"cell": list(FAKE_OPS)}

    def discretize(self) -> FakeArch:
        return FakeArch(tuple(FAKE_OPS[i] for i in self.alphas.argmax(-1).tolist()))

    def set_active(self, arch: Architecture | None) -> None:
        self._active = None if arch is None else FakeArch.parse(str(arch))

    def _cell(self, cell: nn.ModuleList, x: torch.Tensor, arch: FakeArch | None) -> torch.Tensor:
        if arch is not None:
            return x + sum(cell[e][o](x) for e, o in enumerate(arch.ops))
        w = F.softmax(self.alphas, dim=-1)
        return x + sum(sum(w[e, k] * cell[e][o](x) for k, o in enumerate(FAKE_OPS)) for e in range(NUM_EDGES))

    def forward(self, x: torch.Tensor, *, arch: Architecture | None = None, mask: Any = None) -> list[torch.Tensor]:
        a = FakeArch.parse(str(arch)) if arch is not None else self._active
        h = self.base.stem(x)
        f0 = self._cell(self.cell0, h, a)
        h = self.base.down(f0)
        f1 = self._cell(self.cell1, h, a)
        return [f0, f1]

    def extract(self, arch: Architecture) -> FakeNet:
        a = FakeArch.parse(str(arch))
        net = FakeNet(a, self.base.chs)
        net.stem.load_state_dict(self.base.stem.state_dict())
        net.down.load_state_dict(self.base.down.state_dict())
        for e, o in enumerate(a.ops):
            net.cell0[e].load_state_dict(self.cell0[e][o].state_dict())
            net.cell1[e].load_state_dict(self.cell1[e][o].state_dict())
        return net


class FakeSpace(SearchSpace):
    """27 architectures: 3 edges x {zero, skip, conv}. Enumerable, differentiable and single-path."""

    name = "fake"
    capabilities = frozenset({"differentiable", "single_path", "enumerable"})

    def __init__(self, channels: int = 4, num_classes: int = 10):
        if channels < 1:
            raise ConfigError(f"space 'fake': channels must be >= 1, got {channels}")
        self.channels = channels
        self.num_classes = num_classes

    def config(self) -> dict[str, Any]:
        return {"channels": self.channels, "num_classes": self.num_classes}

    def parse(self, text: str) -> FakeArch:
        return FakeArch.parse(text)

    def sample(self, rng: np.random.Generator) -> FakeArch:
        return FakeArch(tuple(FAKE_OPS[int(i)] for i in rng.integers(0, len(FAKE_OPS), NUM_EDGES)))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> FakeArch:
        a = FakeArch.parse(str(arch))
        e = int(rng.integers(NUM_EDGES))
        choices = [o for o in FAKE_OPS if o != a.ops[e]]
        ops = list(a.ops)
        ops[e] = choices[int(rng.integers(len(choices)))]
        return FakeArch(tuple(ops))

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> FakeArch:
        pa, pb = FakeArch.parse(str(a)), FakeArch.parse(str(b))
        take = rng.random(NUM_EDGES) < 0.5
        return FakeArch(tuple(x if t else y for x, y, t in zip(pa.ops, pb.ops, take)))

    # nodes: input, one node per edge (its op), output
    _LABELS: ClassVar[tuple[str, ...]] = ("input", *FAKE_OPS, "output")

    def encode(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        a = FakeArch.parse(str(arch))
        n = NUM_EDGES + 2
        adj = np.zeros((n, n), dtype=np.float32)
        adj[0, 1 : n - 1] = 1
        adj[1 : n - 1, n - 1] = 1
        ops = np.zeros((n, len(self._LABELS)), dtype=np.float32)
        ops[0, 0] = 1
        for e, o in enumerate(a.ops):
            ops[e + 1, self._LABELS.index(o)] = 1
        ops[n - 1, -1] = 1
        return adj, ops

    def decode(self, adjacency: np.ndarray, ops: np.ndarray) -> FakeArch | None:
        ref_adj, _ = self.encode(FakeArch(("skip",) * NUM_EDGES))
        adj = np.asarray(adjacency)
        o = np.asarray(ops)
        if adj.shape != ref_adj.shape or o.shape != (NUM_EDGES + 2, len(self._LABELS)):
            return None
        if not np.array_equal((adj > 0.5).astype(np.float32), ref_adj):
            return None
        idx = o.argmax(-1)
        if idx[0] != 0 or idx[-1] != len(self._LABELS) - 1:
            return None
        names = [self._LABELS[i] for i in idx[1:-1]]
        if any(n in ("input", "output") for n in names):
            return None
        return FakeArch(tuple(names))

    def build(self, arch: Architecture, num_classes: int | None = None) -> FakeNet:
        return FakeNet(FakeArch.parse(str(arch)), self.channels, num_classes)

    def supernet(self, **cfg: Any) -> FakeSupernet:
        return FakeSupernet(cfg.get("channels", self.channels))

    def cost(self, arch: Architecture) -> Cost:
        net = self.build(arch, self.num_classes)
        params = sum(p.numel() for p in net.parameters())
        c = self.channels
        flops = 3 * c * 9 * 16 * 16  # stem at 16x16 output for 32x32 input
        n_conv = sum(o == "conv" for o in FakeArch.parse(str(arch)).ops)
        flops += n_conv * c * c * 9 * 16 * 16 + c * 2 * c * 9 * 8 * 8 + n_conv * 4 * c * c * 9 * 8 * 8
        flops += 2 * c * self.num_classes
        return Cost(params=params, flops=flops)

    def enumerate(self) -> Iterator[FakeArch]:
        for i in range(len(FAKE_OPS) ** NUM_EDGES):
            ops = []
            for _ in range(NUM_EDGES):
                ops.append(FAKE_OPS[i % len(FAKE_OPS)])
                i //= len(FAKE_OPS)
            yield FakeArch(tuple(ops))


class FakeBackbone(nn.Module):
    """A fixed backbone with a CNN pyramid (reductions 2, 4, 8) or a ViT-like one (16 four times)."""

    def __init__(self, kind: str = "cnn", chs: int = 8, in_chans: int = 3):
        super().__init__()
        self.kind = kind
        if kind == "cnn":
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.Conv2d(in_chans if i == 0 else chs * 2 ** (i - 1), chs * 2**i, 3, 2, 1), nn.ReLU())
                for i in range(3)
            )
            self.feature_info = FeatureInfo(
                [{"num_chs": chs * 2**i, "reduction": 2 ** (i + 1), "module": f"blocks.{i}"} for i in range(3)]
            )
        elif kind == "vit":
            self.patch = nn.Conv2d(in_chans, chs, 4, 4)
            self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(chs, chs, 1), nn.GELU()) for _ in range(4))
            self.feature_info = FeatureInfo([{"num_chs": chs, "reduction": 4, "module": f"blocks.{i}"} for i in range(4)])
        else:
            raise ConfigError(f"FakeBackbone kind must be 'cnn' or 'vit', got {kind!r}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        if self.kind == "vit":
            x = self.patch(x)
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class FakeObjective(Objective):
    """Label-free: reconstruct the input from every stage (1x1 conv, upsample, sum); MSE loss.

    ``score`` is the negative loss on the given images (deterministic: no randomness at all).
    """

    def __init__(self, noise: float = 0.0):
        super().__init__()
        self.noise = noise
        self.heads = nn.ModuleList()

    def build_heads(self, feature_info: FeatureInfo) -> None:
        self.heads = nn.ModuleList(nn.Conv2d(c, self.in_chans, 1) for c in feature_info.channels())

    def _recon(self, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
        feats = forward_features(backbone, images)
        size = images.shape[-2:]
        out = 0
        for f, head in zip(feats, self.heads):
            out = out + F.interpolate(head(f), size=size, mode="bilinear", align_corners=False)
        return out  # type: ignore[return-value]

    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        x = images
        if self.noise and self.training:
            x = images + self.noise * torch.randn_like(images)
        return F.mse_loss(self._recon(backbone, x), images)

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        return -float(F.mse_loss(self._recon(backbone, images), images))


class FakeProxy(Proxy):
    """Data-free: the parameter count (in millions) of the network."""

    data_free = True

    def score(self, net: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None, *, loss_fn: LossFn | None = None) -> float:
        return sum(p.numel() for p in net.parameters()) / 1e6


class FakeGradProxy(Proxy):
    """Needs a loss: the gradient norm of cross-entropy on ``targets``, or of ``loss_fn`` (label-free)."""

    needs_loss = True

    def score(self, net: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None, *, loss_fn: LossFn | None = None) -> float:
        if targets is None and loss_fn is None:
            raise ConfigError("proxy 'fake_grad' needs targets or a loss_fn (from the objective) to differentiate")
        with preserved_state(net):
            net.train()
            params = [p for p in net.parameters() if p.requires_grad]
            if targets is not None:
                loss = F.cross_entropy(net(images), targets)
            else:
                assert loss_fn is not None
                loss = loss_fn(net, images)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        return float(sum(g.pow(2).sum() for g in grads if g is not None) ** 0.5)


class FakeStrategy(Strategy):
    """Random search over ``budget`` distinct candidates, ranked by objective score (on the supernet),
    proxy score (on fresh networks) or table accuracy. Checkpoints after every candidate."""

    needs = {"objective": frozenset({"single_path"}), "proxy": frozenset(), "table": frozenset()}

    def __init__(self, budget: int = 4, batch_size: int = 8, train_steps: int = 2, lr: float = 0.05):
        if budget < 1:
            raise ConfigError(f"strategy 'fake': budget must be >= 1, got {budget}")
        self.budget, self.batch_size, self.train_steps, self.lr = budget, batch_size, train_steps, lr

    def config(self) -> dict[str, Any]:
        return {"budget": self.budget, "batch_size": self.batch_size, "train_steps": self.train_steps, "lr": self.lr}

    def run(self, space: SearchSpace, evaluator: Any, data: Any, context: RunContext) -> SearchResult:
        check_compatible(self, space, evaluator, has_labels=getattr(data, "has_labels", None),
                         plugin_manager=None if context is None else context.plugin_manager)
        kind = evaluator_kind(evaluator)
        with context.lifecycle():
            rng = context.rng("fake_strategy")
            state = context.load_checkpoint() or {}
            done: list[tuple[str, dict[str, float]]] = [tuple(x) for x in state.get("done", [])]  # type: ignore[misc]
            supernet = None
            images = None
            if data is not None:
                n = min(len(data), self.batch_size)
                images = torch.stack([data[i] if not isinstance(data[i], tuple) else data[i][0] for i in range(n)])
                images = context.to_device(images)
            if kind == "objective":
                supernet = context.to_device(space.supernet())
                evaluator.setup(supernet.feature_info, in_chans=3, img_size=int(images.shape[-1]))
                evaluator.to(context.device)
                if "supernet" in state:
                    supernet.load_state_dict(state["supernet"])
                    evaluator.load_state_dict(state["objective"])
                else:  # a few one-shot steps on random paths
                    params = list(supernet.parameters()) + list(evaluator.parameters())
                    opt = torch.optim.SGD(params, lr=self.lr)
                    for step in range(self.train_steps):
                        supernet.set_active(space.sample(rng))
                        with context.autocast():
                            loss = evaluator.loss(supernet, images)
                        context.check_finite(loss, "loss", step=step)
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        context.log_step(step, {"loss": loss.item()})
            seen = {a for a, _ in done}
            pool = list(space.enumerate()) if "enumerable" in space.capabilities else None
            while len(done) < self.budget:
                arch = space.sample(rng)
                if str(arch) in seen:
                    if pool is not None and len(seen) >= len(pool):
                        break
                    continue
                seen.add(str(arch))
                if kind == "objective":
                    supernet.set_active(arch)
                    fitness = float(evaluator.score(supernet, images))
                elif kind == "proxy":
                    torch.manual_seed(context.seed)
                    net = context.to_device(space.build(arch, num_classes=10))
                    fitness = float(evaluator.score(net, images))
                elif kind == "table":
                    fitness = float(evaluator.accuracy(arch))
                else:
                    fitness = float(rng.random())
                scores = {"fitness": context.check_finite(fitness, "fitness", candidate=str(arch))}
                done.append((str(arch), scores))
                context.candidate_evaluated(arch, scores)
                ckpt: dict[str, Any] = {"done": [list(x) for x in done]}
                if supernet is not None:
                    ckpt["supernet"] = supernet.state_dict()
                    ckpt["objective"] = evaluator.state_dict()
                context.save_checkpoint(ckpt)
            context.log_epoch(0, {"best_fitness": max(s["fitness"] for _, s in done), "evaluated": len(done)})
            ranked = sorted(done, key=lambda x: -x[1]["fitness"])
            cands = [Candidate(space.parse(a), s) for a, s in ranked]
            result = SearchResult(
                best=cands[0].arch,
                candidates=cands,
                history=context.epoch_history(),
                space=space.registered_name or space.name,
                space_config=space.config(),
                strategy=self.registered_name or "fake",
                objective=getattr(evaluator, "registered_name", None) if kind == "objective" else None,
                proxy=getattr(evaluator, "registered_name", None) if kind == "proxy" else None,
                seed=context.seed,
                cost=space.cost(cands[0].arch).to_dict(),
            )
            return context.finish(result)


def fake_images(n: int = 16, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1] (low-frequency noise, so reconstruction is learnable)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, size // 4), max(2, size // 4), generator=g)
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


class FakePlugin:
    """A plugin registering the fakes under ``fake`` (``fake_grad`` for the loss-based proxy)."""

    @hookimpl
    def nas_register_spaces(self, registry: Any) -> None:
        registry.add("fake", FakeSpace, summary="3-edge toy cell space (nas_core.testing)", capabilities=FakeSpace.capabilities)

    @hookimpl
    def nas_register_objectives(self, registry: Any) -> None:
        registry.add("fake", FakeObjective, summary="toy reconstruction objective (nas_core.testing)", requires_labels=False)

    @hookimpl
    def nas_register_strategies(self, registry: Any) -> None:
        registry.add("fake", FakeStrategy, summary="toy random search (nas_core.testing)", needs=dict(FakeStrategy.needs))

    @hookimpl
    def nas_register_proxies(self, registry: Any) -> None:
        registry.add("fake", FakeProxy, summary="parameter count (nas_core.testing)", data_free=True, higher_is_better=True)
        registry.add("fake_grad", FakeGradProxy, summary="gradient norm (nas_core.testing)", needs_loss=True)

