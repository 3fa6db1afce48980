"""ChainSpace: ``depth`` blocks in a row, each one of OPS. Small, but it honours the whole contract."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import Architecture, ArchitectureError, ConfigError, Cost, FeatureInfo, SearchSpace, Supernet

OPS = ("conv3x3", "conv5x5", "skip")


@dataclass(frozen=True)
class ChainArch(Architecture):
    """``"conv3x3>skip>conv5x5"``."""

    ops: tuple[str, ...]
    space: ClassVar[str] = "chain"

    def __str__(self) -> str:
        return ">".join(self.ops)

    @classmethod
    def parse(cls, text: str) -> ChainArch:
        parts = text.strip().split(">") if isinstance(text, str) and text.strip() else []
        if not parts:
            raise ArchitectureError(f"chain architecture: empty string {text!r}; expected e.g. 'conv3x3>skip'")
        for i, p in enumerate(parts):
            if p not in OPS:
                raise ArchitectureError(f"chain architecture: block {i} has unknown op '{p}' (valid: {', '.join(OPS)})")
        return cls(tuple(parts))

    __hash__ = Architecture.__hash__


def make_op(name: str, chs: int) -> nn.Module:
    if name == "skip":
        return nn.Identity()
    k = 3 if name == "conv3x3" else 5
    return nn.Sequential(nn.Conv2d(chs, chs, k, padding=k // 2, bias=False), nn.BatchNorm2d(chs), nn.ReLU())


class _Body(nn.Module):
    """stem (stride 2) -> first half of the blocks -> stride-2 conv -> second half; two feature stages."""

    def __init__(self, depth: int, chs: int):
        super().__init__()
        self.split = depth // 2
        self.stem = nn.Sequential(nn.Conv2d(3, chs, 3, 2, 1, bias=False), nn.BatchNorm2d(chs), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(chs, chs, 3, 2, 1, bias=False), nn.BatchNorm2d(chs), nn.ReLU())
        self.feature_info = FeatureInfo([{"num_chs": chs, "reduction": 2, "module": "stage0"}, {"num_chs": chs, "reduction": 4, "module": "stage1"}])


class ChainNet(_Body):
    def __init__(self, arch: ChainArch, chs: int, num_classes: int | None):
        super().__init__(len(arch.ops), chs)
        self.blocks = nn.ModuleList(make_op(o, chs) for o in arch.ops)
        self.num_classes = num_classes
        self.head = nn.Linear(chs, num_classes) if num_classes else None

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        for b in self.blocks[: self.split]:
            x = b(x)
        f0 = x
        x = self.down(x)
        for b in self.blocks[self.split :]:
            x = b(x)
        return [f0, x]

    def forward(self, x: torch.Tensor):
        feats = self.forward_features(x)
        return feats if self.head is None else self.head(feats[-1].mean((2, 3)))


class ChainSupernet(Supernet):
    capabilities = frozenset({"single_path", "differentiable"})

    def __init__(self, depth: int, chs: int):
        super().__init__()
        self.body = _Body(depth, chs)
        self.feature_info = self.body.feature_info
        self.blocks = nn.ModuleList(nn.ModuleDict({o: make_op(o, chs) for o in OPS}) for _ in range(depth))
        self.alphas = nn.Parameter(1e-3 * torch.randn(depth, len(OPS)))
        self.active: ChainArch | None = None

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        return {"chain": F.softmax(self.alphas.detach(), -1)}

    def op_names(self):
        return {"chain": list(OPS)}

    def discretize(self) -> ChainArch:
        return ChainArch(tuple(OPS[i] for i in self.alphas.argmax(-1).tolist()))

    def set_active(self, arch) -> None:
        self.active = None if arch is None else ChainArch.parse(str(arch))

    def _block(self, i: int, x: torch.Tensor, arch: ChainArch | None) -> torch.Tensor:
        if arch is not None:
            return self.blocks[i][arch.ops[i]](x)
        w = F.softmax(self.alphas[i], -1)
        return sum(w[k] * self.blocks[i][o](x) for k, o in enumerate(OPS))

    def forward(self, x, *, arch=None, mask=None):
        a = ChainArch.parse(str(arch)) if arch is not None else self.active
        x = self.body.stem(x)
        for i in range(self.body.split):
            x = self._block(i, x, a)
        f0 = x
        x = self.body.down(x)
        for i in range(self.body.split, len(self.blocks)):
            x = self._block(i, x, a)
        return [f0, x]


class ChainSpace(SearchSpace):
    name = "chain"
    capabilities = frozenset({"single_path", "differentiable", "enumerable"})

    def __init__(self, depth: int = 4, channels: int = 8, num_classes: int = 10):
        if depth < 2:
            raise ConfigError(f"space 'chain': depth must be >= 2, got {depth}")
        self.depth, self.channels, self.num_classes = depth, channels, num_classes

    def config(self):
        return {"depth": self.depth, "channels": self.channels, "num_classes": self.num_classes}

    def parse(self, text: str) -> ChainArch:
        arch = ChainArch.parse(text)
        if len(arch.ops) != self.depth:
            raise ArchitectureError(f"chain architecture has {len(arch.ops)} blocks, this space has depth {self.depth}")
        return arch

    def sample(self, rng: np.random.Generator) -> ChainArch:
        return ChainArch(tuple(OPS[i] for i in rng.integers(0, len(OPS), self.depth)))

    def mutate(self, arch, rng) -> ChainArch:
        ops = list(self.parse(str(arch)).ops)
        i = int(rng.integers(self.depth))
        ops[i] = [o for o in OPS if o != ops[i]][int(rng.integers(len(OPS) - 1))]
        return ChainArch(tuple(ops))

    def crossover(self, a, b, rng) -> ChainArch:
        cut = int(rng.integers(1, self.depth))
        return ChainArch(self.parse(str(a)).ops[:cut] + self.parse(str(b)).ops[cut:])

    def encode(self, arch):
        ops = self.parse(str(arch)).ops
        n = self.depth
        adj = np.eye(n, k=1, dtype=np.float32)
        onehot = np.zeros((n, len(OPS)), np.float32)
        onehot[np.arange(n), [OPS.index(o) for o in ops]] = 1
        return adj, onehot

    def decode(self, adjacency, ops):
        adj, o = np.asarray(adjacency), np.asarray(ops)
        if adj.shape != (self.depth, self.depth) or not np.array_equal(adj > 0.5, np.eye(self.depth, k=1) > 0.5):
            return None
        if o.shape != (self.depth, len(OPS)) or not np.allclose(o.max(-1), 1) or not np.allclose(o.sum(-1), 1):
            return None
        return ChainArch(tuple(OPS[i] for i in o.argmax(-1)))

    def build(self, arch, num_classes=None):
        return ChainNet(self.parse(str(arch)), self.channels, num_classes)

    def supernet(self, **cfg) -> ChainSupernet:
        return ChainSupernet(self.depth, cfg.get("channels", self.channels))

    def cost(self, arch) -> Cost:
        a = self.parse(str(arch))
        c, hw0, hw1 = self.channels, 16 * 16, 8 * 8
        params = 3 * c * 9 + 2 * c + c * c * 9 + 2 * c + c * self.num_classes + self.num_classes
        flops = 3 * c * 9 * hw0 + c * c * 9 * hw1 + c * self.num_classes
        for i, o in enumerate(a.ops):
            if o == "skip":
                continue
            k = 9 if o == "conv3x3" else 25
            params += c * c * k + 2 * c
            flops += c * c * k * (hw0 if i < self.depth // 2 else hw1)
        return Cost(params=params, flops=flops)

    def edge_names(self) -> dict[str, list[str]]:
        """Rows of the supernet's ``arch_weights()``: one per block."""
        return {"chain": [f"block {i}" for i in range(self.depth)]}

    def graph(self, arch) -> dict[str, list[tuple[str, str, str]]]:
        """The chain for drawing: input, one node per block output, each edge labelled with its op."""
        ops = self.parse(str(arch)).ops
        nodes = ["input", *(f"b{i}" for i in range(self.depth))]
        return {"chain": [(nodes[i], nodes[i + 1], op) for i, op in enumerate(ops)]}

    def enumerate(self) -> Iterator[ChainArch]:
        for ops in itertools.product(OPS, repeat=self.depth):
            yield ChainArch(ops)
