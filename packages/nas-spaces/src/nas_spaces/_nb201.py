"""NAS-Bench-201: the 4-node, 6-edge cell space and its official network skeleton.

The standalone network follows the benchmark's ``TinyNetwork`` exactly (module names included, so
official state dicts load): a 3x3 conv + BN stem, three stages of ``num_cells`` cells separated by
ResNet basic blocks of stride 2, a final BN-ReLU, global average pooling and a linear classifier.
Cell operations use ReLU-Conv-BN ordering; ``avg_pool_3x3`` excludes padding from the average.

The supernet is written for speed: per cell, the operations on the edges leaving the same node
share one ReLU and run as one convolution per kernel size (their weights are slices of one
tensor), the softmax weights are folded into the affine step of the batch norm, ``none`` is never
computed (it contributes nothing; its architecture weight still gets a gradient through the
softmax), and ``avg_pool_3x3``/``skip_connect`` of a node are shared by all its outgoing edges.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import Architecture, ArchitectureError, ConfigError, Cost, FeatureInfo, SearchSpace
from nas_core import Supernet

from ._common import check_int, memory_format, one_hot_rows, pick

__all__ = [
    "NB201_OPS",
    "NB201_EDGES",
    "NB201Arch",
    "NB201Space",
    "NB201Network",
    "NB201Supernet",
]

#: Candidate operations, in the benchmark's order (columns of ``arch_weights``).
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to node, from node) of the 6 edges, in the order of the official string and of ``arch_weights`` rows.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_TEMPLATE = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
_NONE, _SKIP, _C1, _C3, _POOL = range(5)


def _edge_desc(e: int) -> str:
    i, j = NB201_EDGES[e]
    return f"edge {e} (node {i} <- node {j})"


@dataclass(frozen=True)
class NB201Arch(Architecture):
    """One NAS-Bench-201 cell: the operation on each of the 6 edges (order of :data:`NB201_EDGES`).

    ``str()`` is the official string ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|``.
    """

    ops: tuple[str, ...]
    space: ClassVar[str] = "nb201"

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        if len(ops) != len(NB201_EDGES):
            raise ArchitectureError(f"NB201 architecture needs {len(NB201_EDGES)} edge operations, got {len(ops)}: {ops}")
        for e, op in enumerate(ops):
            if op not in NB201_OPS:
                raise ArchitectureError(f"NB201 {_edge_desc(e)}: unknown op {op!r}; valid: {', '.join(NB201_OPS)}")
        object.__setattr__(self, "ops", ops)

    def __str__(self) -> str:
        groups = []
        for i in (1, 2, 3):
            groups.append("|" + "|".join(f"{self.ops[e]}~{j}" for e, (t, j) in enumerate(NB201_EDGES) if t == i) + "|")
        return "+".join(groups)

    @classmethod
    def parse(cls, text: str) -> NB201Arch:
        if isinstance(text, NB201Arch):
            return text
        if not isinstance(text, str):
            raise ArchitectureError(f"NB201 architecture must be a string like {_TEMPLATE}, got {type(text).__name__}")
        s = text.strip()
        if not s:
            raise ArchitectureError(f"NB201 architecture string is empty; expected the official form {_TEMPLATE}")
        groups = s.split("+")
        if len(groups) != 3:
            raise ArchitectureError(
                f"NB201 architecture {s!r} has {len(groups)} node group(s) separated by '+', expected 3 ({_TEMPLATE})"
            )
        ops: list[str] = []
        for i, group in enumerate(groups, start=1):
            g = group.strip()
            if len(g) < 2 or not (g.startswith("|") and g.endswith("|")):
                raise ArchitectureError(
                    f"NB201 architecture {s!r}: node {i} part {group!r} must be enclosed in '|' like "
                    f"{'|' + '|'.join(f'op~{j}' for j in range(i)) + '|'}"
                )
            items = g[1:-1].split("|")
            if len(items) != i:
                raise ArchitectureError(
                    f"NB201 architecture {s!r}: node {i} has {len(items)} input(s) in {g!r}, expected {i} "
                    f"({'|' + '|'.join(f'op~{j}' for j in range(i)) + '|'})"
                )
            for j, item in enumerate(items):
                e = NB201_EDGES.index((i, j))
                op, sep, src = item.strip().partition("~")
                if not sep:
                    raise ArchitectureError(f"NB201 {_edge_desc(e)}: {item!r} is not of the form 'op~{j}'")
                if src.strip() != str(j):
                    raise ArchitectureError(f"NB201 {_edge_desc(e)}: input '~{src}' in {item!r} must be '~{j}'")
                if op not in NB201_OPS:
                    raise ArchitectureError(f"NB201 {_edge_desc(e)}: unknown op {op!r}; valid: {', '.join(NB201_OPS)}")
                ops.append(op)
        return cls(tuple(ops))

    def connected(self) -> bool:
        """Whether some path of non-``none`` edges leads from the input (node 0) to the output (node 3)."""
        reach = {0}
        for e, (t, j) in enumerate(NB201_EDGES):  # edges are listed in topological order of their target
            if self.ops[e] != "none" and j in reach:
                reach.add(t)
        return 3 in reach

    def nodes(self) -> list[tuple[tuple[str, int], ...]]:
        """The benchmark's genotype layout: per node ``((op, from_node), ...)``."""
        return [tuple((self.ops[e], j) for e, (t, j) in enumerate(NB201_EDGES) if t == i) for i in (1, 2, 3)]

    __hash__ = Architecture.__hash__


# ----------------------------------------------------------------------------------------------
# 3x3 average pooling (the standalone network's and the supernet's avg_pool_3x3)
# ----------------------------------------------------------------------------------------------

def _box3x3(x: torch.Tensor) -> torch.Tensor:
    """Sum over 3x3 windows (stride 1, zero padding), as 4 shifted additions."""
    xp = F.pad(x, (1, 1, 1, 1))
    h = xp[..., :, :-2] + xp[..., :, 1:-1]
    h += xp[..., :, 2:]
    v = h[..., :-2, :] + h[..., 1:-1, :]
    v += h[..., 2:, :]
    return v


_RECIP: dict[tuple[Any, ...], torch.Tensor] = {}


def _recip_counts(x: torch.Tensor) -> torch.Tensor:
    key = (x.shape[-2], x.shape[-1], x.dtype, x.device)
    r = _RECIP.get(key)
    if r is None:
        r = 1.0 / _box3x3(torch.ones(1, 1, x.shape[-2], x.shape[-1], dtype=x.dtype, device=x.device))
        if len(_RECIP) > 64:
            _RECIP.clear()
        _RECIP[key] = r
    return r


class _AvgPool3x3(torch.autograd.Function):
    """``avg_pool2d(x, 3, 1, 1, count_include_pad=False)`` as a separable box filter: several times
    faster than the native CPU kernel, forward and backward (the filter is its own adjoint)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        r = _recip_counts(x)
        ctx.save_for_backward(r)
        return _box3x3(x).mul_(r)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (r,) = ctx.saved_tensors
        return _box3x3(grad * r)


def avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    """3x3 average pooling, stride 1, padding excluded from the count."""
    if x.device.type == "cpu":
        return _AvgPool3x3.apply(x)
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


# ----------------------------------------------------------------------------------------------
# standalone network (the benchmark's TinyNetwork / InferCell)
# ----------------------------------------------------------------------------------------------


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True, track: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class AvgPool3x3(nn.Module):
    """``avg_pool_3x3``: 3x3 average, stride 1, padding excluded from the count (on CPU as a separable box
    filter, :func:`avg_pool_3x3`: the same values, about 5x faster than torch's CPU kernel forward and backward)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool_3x3(x)


class Zero(nn.Module):
    """``none``: the edge contributes nothing (the cell skips it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _make_op(name: str, c: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1, 1)
    return AvgPool3x3()


class ResNetBasicblock(nn.Module):
    """The reduction block between stages: two ReLU-Conv-BN (the first of stride 2) + avgpool/1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Cell(nn.Module):
    """A fixed cell: node ``i`` sums its incoming edges' ops; the output is node 3."""

    def __init__(self, arch: NB201Arch, c: int):
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleList(_make_op(op, c) for op in arch.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for i in (1, 2, 3):
            acc = None
            for e, (t, j) in enumerate(NB201_EDGES):
                if t != i or self.arch.ops[e] == "none":
                    continue
                y = self.layers[e](nodes[j])
                acc = y if acc is None else acc + y
            nodes.append(torch.zeros_like(x) if acc is None else acc)
        return nodes[3]


class _Skeleton(nn.Module):
    """Stem, reduction blocks and final BN-ReLU shared by the network and the supernet."""

    def _init_skeleton(self, channels: int, num_cells: int, in_chans: int) -> None:
        c, n = channels, num_cells
        self.channels, self.num_cells, self.in_chans = c, n, in_chans
        self.stem = nn.Sequential(nn.Conv2d(in_chans, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.stage_channels = (c, 2 * c, 4 * c)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=False))
        self.feature_info = FeatureInfo(
            [
                {"num_chs": c, "reduction": 1, "module": f"cells.{n - 1}"},
                {"num_chs": 2 * c, "reduction": 2, "module": f"cells.{2 * n}"},
                {"num_chs": 4 * c, "reduction": 4, "module": "lastact"},
            ]
        )

    @staticmethod
    def layout(channels: int, num_cells: int) -> list[tuple[int, bool]]:
        """(channels, is_reduction_block) of every entry of ``cells``."""
        c, n = channels, num_cells
        return [(c, False)] * n + [(2 * c, True)] + [(2 * c, False)] * n + [(4 * c, True)] + [(4 * c, False)] * n


class NB201Network(_Skeleton):
    """The official NAS-Bench-201 network for one cell.

    ``forward`` returns logits when ``num_classes`` is set, else the 3 stage features (NCHW;
    reductions 1, 2, 4; the last one after the final BN-ReLU).
    """

    def __init__(self, arch: NB201Arch, channels: int = 16, num_cells: int = 5, num_classes: int | None = 10, in_chans: int = 3):
        super().__init__()
        self._init_skeleton(channels, num_cells, in_chans)
        self.arch = arch
        self.num_classes = num_classes
        self.cells = nn.ModuleList()
        c_prev = channels
        for c, red in self.layout(channels, num_cells):
            self.cells.append(ResNetBasicblock(c_prev, c, 2) if red else NB201Cell(arch, c))
            c_prev = c
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * channels, num_classes) if num_classes else None

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.num_cells
        h = self.stem(x)
        feats = []
        for i, cell in enumerate(self.cells):
            h = cell(h)
            if i in (n - 1, 2 * n):
                feats.append(h)
        feats.append(self.lastact(h))
        return feats

    def forward_head(self, feat: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        out = self.global_pooling(feat).flatten(1)
        if pre_logits or self.classifier is None:
            return out
        return self.classifier(out)

    def forward(self, x: torch.Tensor) -> Any:
        feats = self.forward_features(x)
        if self.classifier is None:
            return feats
        return self.forward_head(feats[-1])


# ----------------------------------------------------------------------------------------------
# supernet
# ----------------------------------------------------------------------------------------------

_OUT_EDGES: tuple[tuple[int, ...], ...] = tuple(
    tuple(e for e, (_, j) in enumerate(NB201_EDGES) if j == src) for src in range(3)
)  # edges leaving node 0, 1, 2: (0, 1, 3), (2, 4), (5,)
_SLOT = {e: (j, edges.index(e)) for j, edges in enumerate(_OUT_EDGES) for e in edges}


class _SourceOps(nn.Module):
    """The parametric ops of every edge leaving one node: one 3x3 and one 1x1 conv of ``n_edges * C``
    output channels (slice ``k`` belongs to the ``k``-th outgoing edge) and their batch norms."""

    def __init__(self, c: int, n_edges: int, affine: bool, track: bool):
        super().__init__()
        self.conv3 = nn.Conv2d(c, n_edges * c, 3, padding=1, bias=False)
        self.conv1 = nn.Conv2d(c, n_edges * c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(n_edges * c, affine=affine, track_running_stats=track)
        self.bn1 = nn.BatchNorm2d(n_edges * c, affine=affine, track_running_stats=track)


def _bn(bn: nn.BatchNorm2d, y: torch.Tensor, scale: torch.Tensor | None, sl: slice | None = None) -> torch.Tensor:
    """Batch norm of ``y`` (channels ``sl`` of ``bn``) with its affine step multiplied by ``scale``."""
    sl = sl or slice(None)
    weight = bn.weight[sl] if bn.affine else None
    bias = bn.bias[sl] if bn.affine else None
    if scale is not None:
        weight = scale if weight is None else weight * scale
        bias = None if bias is None else bias * scale
    use_batch = bn.training or bn.running_mean is None
    rm = None if bn.running_mean is None else bn.running_mean[sl]
    rv = None if bn.running_var is None else bn.running_var[sl]
    return F.batch_norm(y, rm, rv, weight, bias, use_batch, bn.momentum if bn.momentum is not None else 0.1, bn.eps)


class NB201SearchCell(nn.Module):
    """All 5 ops on all 6 edges, mixed by softmax weights or restricted to one op per edge."""

    def __init__(self, c: int, affine: bool = False, track_running_stats: bool = False):
        super().__init__()
        self.c = c
        self.src = nn.ModuleList(_SourceOps(c, len(edges), affine, track_running_stats) for edges in _OUT_EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Mixed forward; ``weights`` is the softmaxed ``[6, 5]`` matrix."""
        c = self.c
        acc: list[torch.Tensor | None] = [x, None, None, None]
        w_skip, w_pool = weights[:, _SKIP].unbind(0), weights[:, _POOL].unbind(0)  # one op each, not 12 selects
        for j, edges in enumerate(_OUT_EDGES):
            xj = acc[j]
            assert xj is not None
            ops = self.src[j]
            idx = list(edges)
            r = F.relu(xj)
            z = _bn(ops.bn3, ops.conv3(r), weights[idx, _C3].repeat_interleave(c)) + _bn(
                ops.bn1, ops.conv1(r), weights[idx, _C1].repeat_interleave(c)
            )
            p = avg_pool_3x3(xj)
            # split, not slices: the backward of a split is one concatenation, where each slice's would fill a
            # zero tensor of z's size
            zs = z.split(c, dim=1) if len(edges) > 1 else (z,)
            for k, e in enumerate(edges):
                i = NB201_EDGES[e][0]
                t = zs[k]
                t = torch.addcmul(torch.addcmul(t, xj, w_skip[e]), p, w_pool[e])
                acc[i] = t if acc[i] is None else acc[i] + t
        out = acc[3]
        assert out is not None
        return out

    def forward_path(self, x: torch.Tensor, arch: NB201Arch) -> torch.Tensor:
        """Single-path forward through one op per edge (shared weights)."""
        c = self.c
        nodes = [x]
        for i in (1, 2, 3):
            acc = None
            for e, (t, j) in enumerate(NB201_EDGES):
                if t != i:
                    continue
                op = arch.ops[e]
                if op == "none":
                    continue
                xj = nodes[j]
                if op == "skip_connect":
                    y = xj
                elif op == "avg_pool_3x3":
                    y = avg_pool_3x3(xj)
                else:
                    src, k = _SLOT[e]
                    ops = self.src[src]
                    sl = slice(k * c, (k + 1) * c)
                    conv, bn, pad = (ops.conv3, ops.bn3, 1) if op == "nor_conv_3x3" else (ops.conv1, ops.bn1, 0)
                    y = _bn(bn, F.conv2d(F.relu(xj), conv.weight[sl], padding=pad), None, sl)
                acc = y if acc is None else acc + y
            nodes.append(torch.zeros_like(x) if acc is None else acc)
        return nodes[3]


class NB201Supernet(_Skeleton, Supernet):
    """The NAS-Bench-201 supernet: differentiable (DARTS) and single-path (weight sharing).

    Cell batch norms are affine-free and keep no running statistics by default, as the benchmark's
    search code uses; stem, reduction blocks and the final BN are ordinary (as there too).
    ``channels_last=True`` runs the network on NHWC tensors (the feature maps keep that memory
    layout; shapes are the same, values agree to rounding). ``None``, the default: on the CPU in fp32,
    where a DARTS epoch of the C=16, N=5 supernet is 15-21% faster in that layout (AVX-512) and 9% (AVX2);
    not under CPU autocast; elsewhere as given. The standalone network stays NCHW: zero-cost proxy
    scoring measured 10% slower channels-last.
    ``forward(x)`` mixes the ops with ``softmax(alphas)`` unless a path is active
    (:meth:`set_active`) or given (``forward(x, arch=...)``).
    """

    capabilities = frozenset({"differentiable", "single_path"})

    def __init__(
        self,
        channels: int = 16,
        num_cells: int = 5,
        in_chans: int = 3,
        affine: bool = False,
        track_running_stats: bool = False,
        channels_last: bool | None = None,
        discretize_none: bool = False,
    ):
        super().__init__()
        self._init_skeleton(channels, num_cells, in_chans)
        self.affine, self.track_running_stats = affine, track_running_stats
        self.channels_last = channels_last
        self.discretize_none = bool(discretize_none)
        self.cells = nn.ModuleList()
        c_prev = channels
        for c, red in self.layout(channels, num_cells):
            self.cells.append(ResNetBasicblock(c_prev, c, 2) if red else NB201SearchCell(c, affine, track_running_stats))
            c_prev = c
        self.alphas = nn.Parameter(1e-3 * torch.randn(len(NB201_EDGES), len(NB201_OPS)))
        self._active: NB201Arch | None = None

    # -- differentiable -------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "alphas"]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        return {"cell": F.softmax(self.alphas.detach().float(), dim=-1).cpu()}

    def op_names(self) -> dict[str, list[str]]:
        return {"cell": list(NB201_OPS)}

    def discretize(self, connected: bool = False) -> NB201Arch:
        """The highest-weighted op of every edge other than ``none`` - DARTS' rule (Liu et al. 2019, sec. 2.4) -
        or, with ``discretize_none=True``, of every op (the NB201 benchmark's DARTS).

        ``none``'s weight is no merit: it contributes nothing, so its softmax weight only scales the edge, and it
        is where the probability mass goes that an objective takes from the other ops. Masked image modelling
        takes it from the ops that carry the masked input forward (``skip_connect``, ``avg_pool_3x3``); argmax
        with ``none`` then hands back cells that lose most of their edges (measured: 86.4% instead of 92.9%
        CIFAR-10 accuracy for one seed, and cells with no input-output path).

        ``connected=True``: the most probable cell (largest sum of log-softmax weights over its 6 edges) among
        those with a path from input to output - the argmax cell itself when it has one.
        """
        logp = F.log_softmax(self.alphas.detach().float(), dim=-1).cpu()
        if not self.discretize_none:
            logp[:, _NONE] = float("-inf")
        arch = NB201Arch(tuple(NB201_OPS[i] for i in logp.argmax(-1).tolist()))
        if not connected or arch.connected():
            return arch
        idx = torch.tensor(list(itertools.product(range(len(NB201_OPS)), repeat=len(NB201_EDGES))))
        total = logp[torch.arange(len(NB201_EDGES)), idx].sum(-1)  # [15625]
        for i in total.argsort(descending=True).tolist():
            cand = NB201Arch(tuple(NB201_OPS[k] for k in idx[i].tolist()))
            if cand.connected():
                return cand
        raise AssertionError("unreachable: the all-skip cell is connected")  # pragma: no cover

    # -- single path ----------------------------------------------------------------------------
    def set_active(self, arch: Architecture | str | None) -> None:
        self._active = None if arch is None else NB201Arch.parse(str(arch))

    def forward(self, x: torch.Tensor, *, arch: Architecture | str | None = None, mask: Any = None) -> list[torch.Tensor]:
        path = NB201Arch.parse(str(arch)) if arch is not None else self._active
        weights = None if path is not None else F.softmax(self.alphas, dim=-1).to(x.dtype)
        x = memory_format(x, self.channels_last)
        n = self.num_cells
        h = self.stem(x)
        feats = []
        for i, cell in enumerate(self.cells):
            if isinstance(cell, NB201SearchCell):
                h = cell.forward_path(h, path) if path is not None else cell(h, weights)
            else:
                h = cell(h)
            if i in (n - 1, 2 * n):
                feats.append(h)
        feats.append(self.lastact(h))
        return feats

    @torch.no_grad()
    def extract(self, arch: Architecture | str, num_classes: int | None = None) -> NB201Network:
        """A standalone :class:`NB201Network` with the supernet's weights for ``arch``.

        Cell batch norms of the standalone network are affine with running statistics; they start
        as the identity affine map (or the supernet's affine values) and with the supernet's running
        statistics when it keeps them, else fresh ones: in train mode (batch statistics) the
        extracted network computes exactly what the supernet computes for the path; recalibrate BN
        statistics before evaluating it in eval mode.
        """
        a = NB201Arch.parse(str(arch))
        net = NB201Network(a, self.channels, self.num_cells, num_classes, self.in_chans)
        net.stem.load_state_dict(self.stem.state_dict())
        net.lastact.load_state_dict(self.lastact.state_dict())
        for sc, nc in zip(self.cells, net.cells):
            if isinstance(sc, ResNetBasicblock):
                nc.load_state_dict(sc.state_dict())
                continue
            c = sc.c
            for e, op in enumerate(a.ops):
                if op not in ("nor_conv_1x1", "nor_conv_3x3"):
                    continue
                src, k = _SLOT[e]
                sl = slice(k * c, (k + 1) * c)
                ops = sc.src[src]
                conv, bn = (ops.conv3, ops.bn3) if op == "nor_conv_3x3" else (ops.conv1, ops.bn1)
                layer = nc.layers[e].op
                layer[1].weight.copy_(conv.weight[sl])
                if bn.affine:
                    layer[2].weight.copy_(bn.weight[sl])
                    layer[2].bias.copy_(bn.bias[sl])
                if bn.running_mean is not None:
                    layer[2].running_mean.copy_(bn.running_mean[sl])
                    layer[2].running_var.copy_(bn.running_var[sl])
        return net


# ----------------------------------------------------------------------------------------------
# the space
# ----------------------------------------------------------------------------------------------

_LABELS: tuple[str, ...] = ("input", *NB201_OPS, "output")


def _fixed_adjacency() -> np.ndarray:
    """The 8-node op-on-node graph: input, the 6 edge ops (in edge order), output."""
    n = len(NB201_EDGES) + 2
    adj = np.zeros((n, n), dtype=np.float32)
    for e, (_, j) in enumerate(NB201_EDGES):
        if j == 0:
            adj[0, e + 1] = 1
        else:  # the ops feeding node j feed this edge
            for f, (t, _) in enumerate(NB201_EDGES):
                if t == j:
                    adj[f + 1, e + 1] = 1
    for f, (t, _) in enumerate(NB201_EDGES):
        if t == 3:
            adj[f + 1, n - 1] = 1
    return adj


_ADJ = _fixed_adjacency()


class NB201Space(SearchSpace):
    """NAS-Bench-201 (Dong & Yang, ICLR 2020): 5 ops on 6 edges, 15625 cells.

    :param channels: ``C`` of the first stage (16 in the benchmark).
    :param num_cells: ``N`` cells per stage (5 in the benchmark).
    :param num_classes: classifier size used by :meth:`cost` (10 for CIFAR-10, 100 for CIFAR-100).
    :param in_chans: input channels.
    :param img_size: input size used by :meth:`cost` for FLOPs (32 for CIFAR).

    FLOPs convention: multiply-accumulates of the weights of every convolution and of the
    classifier for one image (bias, batch norm, ReLU, pooling and additions are not counted); every
    edge op counts, even one whose result cannot reach the cell output, because the official
    network computes it. The benchmark's published ``flops`` also count pooling, BN and ReLU, so
    values differ by a few percent while ranking the same.
    """

    name = "nb201"
    capabilities = frozenset({"differentiable", "single_path", "enumerable"})

    def __init__(self, channels: int = 16, num_cells: int = 5, num_classes: int = 10, in_chans: int = 3, img_size: int = 32):
        self.channels = check_int("nb201", "channels", channels)
        self.num_cells = check_int("nb201", "num_cells", num_cells)
        self.num_classes = check_int("nb201", "num_classes", num_classes)
        self.in_chans = check_int("nb201", "in_chans", in_chans)
        self.img_size = check_int("nb201", "img_size", img_size, 4)
        if self.img_size % 4:
            raise ConfigError(f"space 'nb201': option 'img_size' must be a multiple of 4 (two stride-2 stages), got {img_size}")

    def config(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "num_cells": self.num_cells,
            "num_classes": self.num_classes,
            "in_chans": self.in_chans,
            "img_size": self.img_size,
        }

    # -- values ---------------------------------------------------------------------------------
    def parse(self, text: str) -> NB201Arch:
        return NB201Arch.parse(text)

    def _arch(self, arch: Architecture | str) -> NB201Arch:
        if isinstance(arch, NB201Arch):
            return arch
        return NB201Arch.parse(str(arch))

    def sample(self, rng: np.random.Generator) -> NB201Arch:
        return NB201Arch(tuple(NB201_OPS[int(i)] for i in rng.integers(0, len(NB201_OPS), len(NB201_EDGES))))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> NB201Arch:
        """Change the op of one random edge to a different op."""
        a = self._arch(arch)
        e = int(rng.integers(len(NB201_EDGES)))
        ops = list(a.ops)
        ops[e] = pick(rng, [o for o in NB201_OPS if o != ops[e]])
        return NB201Arch(tuple(ops))

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> NB201Arch:
        """Uniform crossover: each edge's op from either parent."""
        pa, pb = self._arch(a), self._arch(b)
        take = rng.random(len(NB201_EDGES)) < 0.5
        return NB201Arch(tuple(x if t else y for x, y, t in zip(pa.ops, pb.ops, take)))

    def enumerate(self) -> Iterator[NB201Arch]:
        """All 15625 cells (edge 0 varies slowest)."""
        for ops in itertools.product(NB201_OPS, repeat=len(NB201_EDGES)):
            yield NB201Arch(ops)

    def __len__(self) -> int:
        return len(NB201_OPS) ** len(NB201_EDGES)

    # -- graphs ---------------------------------------------------------------------------------
    def encode(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        """arch2vec's op-on-node form: 8 nodes (input, one per edge in edge order, output) with the
        fixed NB201 adjacency and one-hot labels over ``("input", *NB201_OPS, "output")``."""
        a = self._arch(arch)
        ops = np.zeros((len(_ADJ), len(_LABELS)), dtype=np.float32)
        ops[0, 0] = 1
        for e, op in enumerate(a.ops):
            ops[e + 1, _LABELS.index(op)] = 1
        ops[-1, -1] = 1
        return _ADJ.copy(), ops

    def decode(self, adjacency: np.ndarray, ops: np.ndarray) -> NB201Arch | None:
        adj = np.asarray(adjacency)
        if adj.shape != _ADJ.shape or not np.array_equal((adj > 0.5).astype(np.float32), _ADJ):
            return None
        idx = one_hot_rows(ops, len(_LABELS))
        if idx is None or len(idx) != len(_ADJ) or idx[0] != 0 or idx[-1] != len(_LABELS) - 1:
            return None
        names = [_LABELS[i] for i in idx[1:-1]]
        if any(n in ("input", "output") for n in names):
            return None
        return NB201Arch(tuple(names))

    # -- networks -------------------------------------------------------------------------------
    def build(self, arch: Architecture, num_classes: int | None = None) -> NB201Network:
        return NB201Network(self._arch(arch), self.channels, self.num_cells, num_classes, self.in_chans)

    def supernet(
        self,
        channels: int | None = None,
        num_cells: int | None = None,
        affine: bool = False,
        track_running_stats: bool = False,
        channels_last: bool | None = None,
        discretize_none: bool = False,
        **unknown: Any,
    ) -> NB201Supernet:
        """The supernet (options default to the space's ``channels``/``num_cells``; ``channels_last=None``: on
        the CPU, see :class:`NB201Supernet`)."""
        if unknown:
            raise ConfigError(
                f"space 'nb201': unknown supernet option '{next(iter(unknown))}' "
                f"(valid: channels, num_cells, affine, track_running_stats, channels_last, discretize_none)"
            )
        return NB201Supernet(
            check_int("nb201", "channels", channels if channels is not None else self.channels),
            check_int("nb201", "num_cells", num_cells if num_cells is not None else self.num_cells),
            self.in_chans,
            bool(affine),
            bool(track_running_stats),
            None if channels_last is None else bool(channels_last),
            bool(discretize_none),
        )

    def defect(self, arch: Architecture) -> str | None:
        a = self._arch(arch)
        if a.connected():
            return None
        return ("no path from the input to the output: every path crosses a 'none' edge, so the cell outputs "
                "zeros and the network computes a constant (chance accuracy)")

    # -- cost -----------------------------------------------------------------------------------
    def graph(self, arch: Architecture) -> dict[str, list[tuple[str, str, str]]]:
        """The cell as edges ``(from node, to node, op)`` for drawing, ``none`` edges included (drawn as absent:
        a cell whose output receives only ``none`` shows as disconnected)."""
        a = self.parse(str(arch))
        names = ("in", "1", "2", "out")
        return {"cell": [(names[j], names[i], op) for op, (i, j) in zip(a.ops, NB201_EDGES)]}

    def edge_names(self) -> dict[str, list[str]]:
        """Rows of the supernet's ``arch_weights()``: ``node 1 <- node 0 (in)``, ..., in the official string's order."""
        names = ("node 0 (in)", "node 1", "node 2", "node 3 (out)")
        return {"cell": [f"{names[i]} <- {names[j]}" for i, j in NB201_EDGES]}

    def cost(self, arch: Architecture) -> Cost:
        """Analytic parameters and MACs of :meth:`build` ``(arch, num_classes=self.num_classes)``."""
        a = self._arch(arch)
        return Cost(*nb201_cost(a, self.channels, self.num_cells, self.num_classes, self.in_chans, self.img_size))


def nb201_cost(
    arch: NB201Arch, channels: int = 16, num_cells: int = 5, num_classes: int | None = 10, in_chans: int = 3, img_size: int = 32
) -> tuple[int, int]:
    """(parameters, MACs) of the standalone network, computed in closed form."""
    c, n, hw = channels, num_cells, img_size * img_size
    n3 = arch.ops.count("nor_conv_3x3")
    n1 = arch.ops.count("nor_conv_1x1")
    params = in_chans * c * 9 + 2 * c  # stem conv + BN
    macs = in_chans * c * 9 * hw
    for s, ch in enumerate((c, 2 * c, 4 * c)):
        area = hw // 4**s
        params += n * (n3 * (9 * ch * ch + 2 * ch) + n1 * (ch * ch + 2 * ch))
        macs += n * area * (n3 * 9 * ch * ch + n1 * ch * ch)
        if s > 0:  # reduction block into this stage
            ci = ch // 2
            params += 9 * ci * ch + 2 * ch + 9 * ch * ch + 2 * ch + ci * ch
            macs += area * (9 * ci * ch + 9 * ch * ch + ci * ch)
    params += 2 * 4 * c  # final BN
    if num_classes:
        params += 4 * c * num_classes + num_classes
        macs += 4 * c * num_classes
    return params, macs

