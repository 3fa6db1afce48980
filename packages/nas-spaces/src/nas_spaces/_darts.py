"""The DARTS CNN cell space: S0 and R-DARTS' S1-S4, the search supernet (DARTS and PC-DARTS),
and the CIFAR / ImageNet evaluation networks.

Networks follow the DARTS code release: a cell has two inputs (the two previous cells, made ``C``
channels wide by ReLU-Conv-BN, or a factorized reduction after a reduction cell) and 4 nodes each
summing 2 ops; it outputs the concatenation of its nodes. Reduction cells sit at ``layers // 3``
and ``2 * layers // 3`` and double the channels.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import Architecture, ArchitectureError, ConfigError, Cost, FeatureInfo, IncompatibleError, SearchSpace, Supernet

from ._common import check_choice, check_int, count_macs, count_params, memory_format, one_hot_rows, pick
from ._darts_arch import NUM_EDGES, OP_NAMES, PRESETS, STEPS, DartsArch, edge_index
from ._darts_ops import FactorizedReduce, Noise, Pool, ReLUConvBN, Zero, channel_shuffle, drop_path, make_op, starts_with_relu

__all__ = ["DartsSpace", "DartsNetwork", "DartsSupernet", "DartsCell", "AuxiliaryHead"]

_CELLS = ("normal", "reduce")


# ----------------------------------------------------------------------------------------------
# standalone networks
# ----------------------------------------------------------------------------------------------


class DartsCell(nn.Module):
    """A discrete cell built from one cell of a genotype."""

    def __init__(
        self,
        cell: Sequence[tuple[str, int]],
        concat: Sequence[int],
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        pool_bn: bool = False,
    ):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.indices = [j for _, j in cell]
        self.concat = list(concat)
        self.multiplier = len(self.concat)
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and j < 2 else 1, affine=True, pool_bn=pool_bn) for op, j in cell
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self.ops) // 2):
            hs = []
            for k in (2 * i, 2 * i + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier after the second reduction cell (CIFAR: 5x5/3 pooling; ImageNet: 5x5/2)."""

    def __init__(self, c: int, num_classes: int, imagenet: bool = False):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        if not imagenet:  # the ImageNet head of the DARTS release has no BN here
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _stem(kind: str, in_chans: int, c: int, stem_multiplier: int) -> tuple[dict[str, nn.Module], int, int, bool, int]:
    """(modules, C_prev_prev, C_prev, reduction_prev, stem reduction)."""
    if kind == "cifar":
        cs = stem_multiplier * c
        stem = nn.Sequential(nn.Conv2d(in_chans, cs, 3, padding=1, bias=False), nn.BatchNorm2d(cs))
        return {"stem": stem}, cs, cs, False, 1
    # ImageNet: three stride-2 3x3 convs (DARTS / UnNAS)
    stem0 = nn.Sequential(
        nn.Conv2d(in_chans, c // 2, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c),
    )
    stem1 = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c))
    return {"stem0": stem0, "stem1": stem1}, c, c, True, 8


def _reductions(layers: int) -> tuple[int, int]:
    return layers // 3, 2 * layers // 3


class _Macro(nn.Module):
    """Stem + cell stack bookkeeping shared by the networks and the supernet."""

    def _init_macro(self, stem: str, in_chans: int, channels: int, layers: int, stem_multiplier: int) -> tuple[int, int, bool]:
        self.stem_kind, self.in_chans, self.channels, self.layers = stem, in_chans, channels, layers
        mods, c_pp, c_p, red_prev, self.stem_reduction = _stem(stem, in_chans, channels, stem_multiplier)
        for k, m in mods.items():
            setattr(self, k, m)
        r1, r2 = _reductions(layers)
        self.feature_cells = (r1 - 1, r2 - 1, layers - 1)
        return c_pp, c_p, red_prev

    def _set_feature_info(self, out_channels: list[int]) -> None:
        s = self.stem_reduction
        self.feature_info = FeatureInfo(
            [
                {"num_chs": out_channels[i], "reduction": s * 2**k, "module": f"cells.{i}"}
                for k, i in enumerate(self.feature_cells)
            ]
        )

    def _memory_format(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in channels-last layout when asked (``None``: on the CPU in fp32, where the depthwise convs and
        pooling of these cells are about twice as fast in that layout; see :func:`memory_format`)."""
        return memory_format(x, self.channels_last)

    def _stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._memory_format(x)
        if self.stem_kind == "cifar":
            s = self.stem(x)
            return s, s
        s0 = self.stem0(x)
        return s0, self.stem1(s0)


class DartsNetwork(_Macro):
    """The evaluation network of a genotype (DARTS ``NetworkCIFAR`` / ``NetworkImageNet``).

    ``forward`` returns logits when ``num_classes`` is set, else the 3 stage features (outputs of the
    cells before each reduction and of the last cell). With ``auxiliary=True`` an auxiliary head
    follows the second reduction cell; :meth:`forward_train` returns ``(logits, aux_logits)``.
    ``drop_path_prob`` (set it per epoch, as DARTS ramps it) applies in train mode to every non-identity op.
    ``channels_last``: run on channels-last tensors (``None``, the default: on the CPU only); values and
    shapes are the same either way.
    """

    def __init__(
        self,
        arch: DartsArch,
        channels: int = 36,
        layers: int = 20,
        num_classes: int | None = 10,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        stem: str = "cifar",
        in_chans: int = 3,
        stem_multiplier: int = 3,
        pool_bn: bool = False,
        channels_last: bool | None = None,
    ):
        super().__init__()
        self.channels_last = channels_last
        self.arch = arch
        self.num_classes = num_classes
        self.drop_path_prob = drop_path_prob
        c_pp, c_p, red_prev = self._init_macro(stem, in_chans, channels, layers, stem_multiplier)
        r1, r2 = _reductions(layers)
        self.aux_index = r2
        c_curr = channels
        self.cells = nn.ModuleList()
        outs = []
        c_aux = c_p
        for i in range(layers):
            red = i in (r1, r2)
            if red:
                c_curr *= 2
            kind = "reduce" if red else "normal"
            cell = DartsCell(arch.cell(kind), arch.concat(kind), c_pp, c_p, c_curr, red, red_prev, pool_bn)
            self.cells.append(cell)
            red_prev = red
            c_pp, c_p = c_p, cell.multiplier * c_curr
            outs.append(c_p)
            if i == r2:
                c_aux = c_p
        self._set_feature_info(outs)
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, stem == "imagenet") if auxiliary and num_classes else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes) if num_classes else None

    def _run(self, x: torch.Tensor, aux: bool) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        s0, s1 = self._stem_forward(x)
        feats, logits_aux = [], None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i in self.feature_cells:
                feats.append(s1)
            if aux and i == self.aux_index and self.auxiliary_head is not None:
                logits_aux = self.auxiliary_head(s1)
        return feats, logits_aux

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._run(x, False)[0]

    def forward_head(self, feat: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        out = self.global_pooling(feat).flatten(1)
        return out if pre_logits or self.classifier is None else self.classifier(out)

    def forward(self, x: torch.Tensor) -> Any:
        feats = self.forward_features(x)
        return feats if self.classifier is None else self.forward_head(feats[-1])

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, auxiliary logits or ``None``) for the DARTS training loss ``ce + w * ce_aux``."""
        if self.classifier is None:
            raise ConfigError("forward_train needs a classifier: build the network with num_classes")
        feats, aux = self._run(x, self.training)
        return self.forward_head(feats[-1]), aux


# ----------------------------------------------------------------------------------------------
# supernet
# ----------------------------------------------------------------------------------------------


class MixedEdge(nn.Module):
    """All candidate ops of one edge; with ``k > 1`` only ``C/k`` channels pass through them (PC-DARTS)
    and the rest bypass the edge, followed by a channel shuffle."""

    def __init__(self, names: Sequence[str], c: int, stride: int, k: int = 1):
        super().__init__()
        self.names = tuple(names)
        self.k, self.stride = k, stride
        self.cp = c // k
        self.ops = nn.ModuleList(make_op(n, self.cp, stride, affine=False, relu_in=False, pool_bn=True) for n in self.names)
        self.pre = tuple(starts_with_relu(n, stride) for n in self.names)
        # ops ending in a batch norm fold their weight into it (forward(x, scale)); identity and noise multiply
        self.folds = tuple(not isinstance(op, (nn.Identity, Noise, Zero)) for op in self.ops)
        self.shared: tuple[bool, ...] = (False,) * len(self.ops)

    def _finish(self, out: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        if out is None:  # every op is 'none'
            xs = x[:, : self.cp]
            out = (xs if self.stride == 1 else xs[:, :, :: self.stride, :: self.stride]).mul(0.0)
        if self.k == 1:
            return out
        rest = x[:, self.cp :]
        if self.stride != 1:
            rest = F.max_pool2d(rest, 2, 2)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.k)

    def forward(
        self, x: torch.Tensor, r: torch.Tensor, weights: torch.Tensor, pooled: dict[int, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``x`` the input, ``r = relu(x)`` (shared by the edges leaving the same state), ``weights`` [ops];
        ``pooled`` caches the outputs of shared pooling ops across the edges leaving ``x``'s state."""
        if self.k > 1:
            xs, rs = x[:, : self.cp], r[:, : self.cp]
        else:
            xs, rs = x, r
        out = None
        for i, (name, op) in enumerate(zip(self.names, self.ops)):
            if name == "none":  # contributes zero; its weight still gets a gradient through the softmax
                continue
            inp = rs if self.pre[i] else xs
            if pooled is not None and self.shared[i]:
                p = pooled.get(id(op))
                if p is None:
                    p = pooled[id(op)] = op(inp)
                y = weights[i] * p
            else:
                y = op(inp, weights[i]) if self.folds[i] else weights[i] * op(inp)
            out = y if out is None else out + y
        return self._finish(out, x)

    def forward_op(self, x: torch.Tensor, r: torch.Tensor, i: int, pooled: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
        """Only op ``i`` (single path); ``pooled`` as in :meth:`forward`."""
        xs, rs = (x[:, : self.cp], r[:, : self.cp]) if self.k > 1 else (x, r)
        op = self.ops[i]
        if self.names[i] == "none":
            out = None
        elif pooled is not None and self.shared[i]:
            out = pooled.get(id(op))
            if out is None:
                out = pooled[id(op)] = op(xs)
        else:
            out = op(rs if self.pre[i] else xs)
        return self._finish(out, x)


class SearchCell(nn.Module):
    """A cell with every candidate op on each of its 14 edges."""

    def __init__(self, edge_ops: Sequence[Sequence[str]], c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, k: int):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList()
        for node in range(2, 2 + STEPS):
            for src in range(node):
                e = edge_index(node, src)
                self.edges.append(MixedEdge(edge_ops[e], c, 2 if reduction and src < 2 else 1, k))
        self._share_pools()

    def _share_pools(self) -> None:
        """Pooling and its affine-free BN have no weights and see the same input on every edge leaving a state,
        so those edges share one pooling module and the forward computes each state's pooled map once (the
        same values and gradients; the shared running statistics are those of the pooled state, updated
        once per forward that uses them)."""
        for src in range(1 + STEPS):
            leaving = [self.edges[edge_index(node, src)] for node in range(max(2, src + 1), 2 + STEPS)]
            first: dict[str, nn.Module] = {}
            for edge in leaving:
                for i, (name, op) in enumerate(zip(edge.names, edge.ops)):
                    if isinstance(op, Pool):
                        edge.ops[i] = first.setdefault(name, op)
                edge.shared = tuple(isinstance(op, Pool) for op in edge.ops)

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor | None,
        edge_weights: torch.Tensor | None = None,
        path: Sequence[tuple[str, int]] | None = None,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        relus: list[torch.Tensor | None] = [None, None]
        pooled: list[dict[int, torch.Tensor]] = [{} for _ in range(2 + STEPS)]

        def relu(j: int) -> torch.Tensor:
            if relus[j] is None:
                relus[j] = F.relu(states[j])
            return relus[j]  # type: ignore[return-value]

        for node in range(2, 2 + STEPS):
            acc = None
            if path is not None:
                for op, j in path[2 * (node - 2) : 2 * (node - 2) + 2]:
                    edge = self.edges[edge_index(node, j)]
                    y = edge.forward_op(states[j], relu(j), edge.names.index(op), pooled[j])
                    acc = y if acc is None else acc + y
            else:
                assert weights is not None
                for j in range(node):
                    e = edge_index(node, j)
                    y = self.edges[e](states[j], relu(j), weights[e], pooled[j])
                    if edge_weights is not None:
                        y = edge_weights[e] * y
                    acc = y if acc is None else acc + y
            states.append(acc)  # type: ignore[arg-type]
            relus.append(None)
        return torch.cat(states[2:], dim=1)


class DartsSupernet(_Macro, Supernet):
    """The DARTS search network (Liu et al., 2019) with optional partial channels and edge
    normalisation (PC-DARTS, Xu et al., 2020).

    Architecture parameters: ``alphas_normal``/``alphas_reduce`` ``[14, ops]`` (and
    ``betas_normal``/``betas_reduce`` ``[14]`` with edge normalisation), initialised as
    ``1e-3 * randn`` like the reference. Cell ops use affine-free BN; pooling ops are followed by an
    affine-free BN. ``none`` is never computed. ``forward(x, arch=genotype)`` runs one path (the
    genotype's 2 edges per node) with the shared weights. ``channels_last`` as in :class:`DartsNetwork`
    (``None``: channels-last on the CPU, measured about 1.7x faster there per weight step).
    """

    capabilities = frozenset({"differentiable", "single_path"})

    def __init__(
        self,
        normal_ops: Sequence[Sequence[str]],
        reduce_ops: Sequence[Sequence[str]],
        channels: int = 16,
        layers: int = 8,
        stem: str = "cifar",
        in_chans: int = 3,
        stem_multiplier: int = 3,
        partial_channels: int = 1,
        edge_normalization: bool | None = None,
        channels_last: bool | None = None,
    ):
        super().__init__()
        self.channels_last = channels_last
        self.edge_ops = {"normal": [tuple(o) for o in normal_ops], "reduce": [tuple(o) for o in reduce_ops]}
        for kind, ops in self.edge_ops.items():
            if len(ops) != NUM_EDGES or len({len(o) for o in ops}) != 1:
                raise ConfigError(f"DARTS supernet: the {kind} cell needs {NUM_EDGES} edges with the same number of ops each")
        self.partial_channels = k = int(partial_channels)
        self.edge_normalization = (k > 1) if edge_normalization is None else bool(edge_normalization)
        self.stem_multiplier = stem_multiplier
        c_pp, c_p, red_prev = self._init_macro(stem, in_chans, channels, layers, stem_multiplier)
        r1, r2 = _reductions(layers)
        c_curr = channels
        self.cells = nn.ModuleList()
        outs = []
        for i in range(layers):
            red = i in (r1, r2)
            if red:
                c_curr *= 2
            if c_curr % (2 * k):
                raise ConfigError(
                    f"DARTS supernet: {c_curr} channels in cell {i} cannot be split into {k} partial-channel groups "
                    f"(channels must be a multiple of 2 * partial_channels)"
                )
            cell = SearchCell(self.edge_ops["reduce" if red else "normal"], c_pp, c_p, c_curr, red, red_prev, k)
            self.cells.append(cell)
            red_prev = red
            c_pp, c_p = c_p, STEPS * c_curr
            outs.append(c_p)
        self._set_feature_info(outs)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, len(self.edge_ops["normal"][0])))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, len(self.edge_ops["reduce"][0])))
        if self.edge_normalization:
            self.betas_normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES))
            self.betas_reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES))
        self._active: DartsArch | None = None

    # -- architecture parameters ----------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        out = [self.alphas_normal, self.alphas_reduce]
        if self.edge_normalization:
            out += [self.betas_normal, self.betas_reduce]
        return out

    def weight_parameters(self) -> list[nn.Parameter]:
        ids = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def _edge_weights(self, kind: str) -> torch.Tensor | None:
        """Per-edge weights: softmax of ``betas`` over the incoming edges of each node."""
        if not self.edge_normalization:
            return None
        betas = self.betas_reduce if kind == "reduce" else self.betas_normal
        parts = []
        for node in range(2, 2 + STEPS):
            a, b = edge_index(node, 0), edge_index(node, node - 1) + 1
            parts.append(F.softmax(betas[a:b], dim=-1))
        return torch.cat(parts)

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Softmaxed op weights ``[14, ops]`` per cell type (times the edge weights with edge normalisation)."""
        out = {}
        for kind in _CELLS:
            alphas = self.alphas_reduce if kind == "reduce" else self.alphas_normal
            w = F.softmax(alphas.detach().float(), dim=-1)
            ew = self._edge_weights(kind)
            if ew is not None:
                w = w * ew.detach().float()[:, None]
            out[kind] = w.cpu()
        return out

    def op_names(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in _CELLS:
            ops = self.edge_ops[kind]
            out[kind] = list(ops[0]) if all(o == ops[0] for o in ops) else [list(o) for o in ops]
        return out

    def discretize(self) -> DartsArch:
        """DARTS' rule: per node the 2 incoming edges with the strongest non-``none`` op, each with that op."""
        w = self.arch_weights()
        cells = {kind: _parse_cell(w[kind].numpy(), self.edge_ops[kind]) for kind in _CELLS}
        concat = tuple(range(2, 2 + STEPS))
        return DartsArch(cells["normal"], concat, cells["reduce"], concat)

    # -- forward --------------------------------------------------------------------------------
    def set_active(self, arch: Architecture | str | None) -> None:
        self._active = None if arch is None else self._path(arch)

    def _path(self, arch: Architecture | str) -> DartsArch:
        a = DartsArch.parse(arch if isinstance(arch, DartsArch) else str(arch))
        if a.num_nodes != STEPS:
            raise ArchitectureError(f"the DARTS supernet has {STEPS} nodes per cell; the genotype has {a.num_nodes}")
        for kind in _CELLS:
            for k, (op, j) in enumerate(a.cell(kind)):
                names = self.edge_ops[kind][edge_index(2 + k // 2, j)]
                if op not in names:
                    raise ArchitectureError(
                        f"{kind}[{k}] ({op!r}, {j}): op {op!r} is not a candidate of this supernet's edge; valid: {', '.join(names)}"
                    )
        return a

    def forward(self, x: torch.Tensor, *, arch: Architecture | str | None = None, mask: Any = None) -> list[torch.Tensor]:
        path = self._path(arch) if arch is not None else self._active
        weights = {}
        if path is None:
            for kind in _CELLS:
                alphas = self.alphas_reduce if kind == "reduce" else self.alphas_normal
                weights[kind] = (F.softmax(alphas, dim=-1).to(x.dtype), self._edge_weights(kind))
        s0, s1 = self._stem_forward(x)
        feats = []
        for i, cell in enumerate(self.cells):
            kind = "reduce" if cell.reduction else "normal"
            if path is None:
                w, ew = weights[kind]
                s0, s1 = s1, cell(s0, s1, w, ew)
            else:
                s0, s1 = s1, cell(s0, s1, None, path=path.cell(kind))
            if i in self.feature_cells:
                feats.append(s1)
        return feats

    @torch.no_grad()
    def extract(self, arch: Architecture | str, num_classes: int | None = None) -> DartsNetwork:
        """A standalone :class:`DartsNetwork` (same width and depth) with the supernet's weights for ``arch``.

        Its cells keep the search network's BN after pooling ops, so in train mode (and in eval mode,
        the running statistics being copied) it computes exactly what ``forward(x, arch=arch)`` does.
        """
        if self.partial_channels > 1:
            raise IncompatibleError(
                "extract() needs a supernet without partial channels (partial_channels=1): a partial-channel path "
                "is not a standalone network; build the genotype with space.build(arch) instead"
            )
        a = self._path(arch)
        net = DartsNetwork(
            a, self.channels, self.layers, num_classes, stem=self.stem_kind, in_chans=self.in_chans,
            stem_multiplier=self.stem_multiplier, pool_bn=True, channels_last=self.channels_last,
        )
        for name in ("stem", "stem0", "stem1"):
            if hasattr(self, name):
                _copy_state(getattr(self, name), getattr(net, name))
        for sc, nc in zip(self.cells, net.cells):
            _copy_state(sc.preprocess0, nc.preprocess0)
            _copy_state(sc.preprocess1, nc.preprocess1)
            kind = "reduce" if sc.reduction else "normal"
            for k, (op, j) in enumerate(a.cell(kind)):
                edge = sc.edges[edge_index(2 + k // 2, j)]
                _copy_state(edge.ops[edge.names.index(op)], nc.ops[k])
        return net


def _copy_state(src: nn.Module, dst: nn.Module) -> None:
    """Copy every tensor of ``src`` into the same-named tensor of ``dst`` (which may have more, e.g. affine BN)."""
    dst_state = dst.state_dict()
    for key, value in src.state_dict().items():
        if key not in dst_state or dst_state[key].shape != value.shape:
            raise RuntimeError(f"cannot copy '{key}' {tuple(value.shape)} into {type(dst).__name__}")
        dst_state[key].copy_(value)


def _parse_cell(w: np.ndarray, edge_ops: Sequence[Sequence[str]]) -> tuple[tuple[str, int], ...]:
    gene: list[tuple[str, int]] = []
    for node in range(2, 2 + STEPS):
        best: dict[int, tuple[float, str]] = {}
        for j in range(node):
            e = edge_index(node, j)
            cands = [(float(w[e, k]), name) for k, name in enumerate(edge_ops[e]) if name != "none"]
            best[j] = max(cands, key=lambda t: t[0]) if cands else (-np.inf, "none")
        top = sorted(range(node), key=lambda j: -best[j][0])[:2]
        gene.extend((best[j][1], j) for j in top)
    return tuple(gene)


# ----------------------------------------------------------------------------------------------
# the space
# ----------------------------------------------------------------------------------------------

_NETWORK_DEFAULTS = {
    "cifar": {"channels": 36, "layers": 20, "num_classes": 10, "img_size": 32},
    "imagenet": {"channels": 48, "layers": 14, "num_classes": 1000, "img_size": 224},
}
_CELL_NODES = 2 + 2 * STEPS + 1  # in0, in1, 8 op nodes, output


class DartsSpace(SearchSpace):
    """The DARTS cell space (Liu et al., ICLR 2019) and R-DARTS' reduced spaces S1-S4 (Zela et al., ICLR 2020).

    :param preset: ``"s0"`` (the 8 DARTS ops on every edge), ``"s1"`` (per-edge pairs as released with
        R-DARTS), ``"s2"`` (skip/sep3x3), ``"s3"`` (none/skip/sep3x3), ``"s4"`` (noise/sep3x3).
    :param ops: a custom op list for every edge (overrides the preset).
    :param network: ``"cifar"`` (3x3 stem; C=36, L=20, 32x32, 10 classes by default) or
        ``"imagenet"`` (three stride-2 3x3 convs; C=48, L=14, 224x224, 1000 classes) for :meth:`build`.
    :param channels, layers: of the evaluation network :meth:`build` makes.
    :param auxiliary: add DARTS' auxiliary head (see :meth:`DartsNetwork.forward_train`).
    :param drop_path_prob: drop-path probability of the built network (DARTS trains with 0.2, ramped).
    :param search_channels, search_layers: of the supernet (16 and 8 as in DARTS).
    :param img_size: input size for :meth:`cost`.

    ``cost()``: parameters of the built network *without* the auxiliary head (how DARTS reports model
    size), and multiply-accumulates of every conv and linear layer for one image (BN, ReLU,
    pooling and additions not counted).
    """

    name = "darts"
    capabilities = frozenset({"differentiable", "single_path"})

    def __init__(
        self,
        preset: str = "s0",
        ops: Sequence[str] | None = None,
        network: str = "cifar",
        channels: int | None = None,
        layers: int | None = None,
        num_classes: int | None = None,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        in_chans: int = 3,
        img_size: int | None = None,
        search_channels: int = 16,
        search_layers: int = 8,
    ):
        self.preset = check_choice("darts", "preset", str(preset).lower(), tuple(PRESETS))
        self.network = check_choice("darts", "network", network, tuple(_NETWORK_DEFAULTS))
        d = _NETWORK_DEFAULTS[network]
        self.ops = None if ops is None else tuple(ops)
        if self.ops is not None:
            bad = [o for o in self.ops if o not in OP_NAMES]
            if bad or not self.ops:
                raise ConfigError(f"space 'darts': option 'ops' has unknown op {bad[0] if bad else None!r}; valid: {', '.join(OP_NAMES)}")
            self.edge_ops = {kind: (self.ops,) * NUM_EDGES for kind in _CELLS}
        else:
            self.edge_ops = {kind: PRESETS[self.preset][kind] for kind in _CELLS}
        self.choices = {kind: tuple(tuple(o for o in ops_ if o != "none") for ops_ in self.edge_ops[kind]) for kind in _CELLS}
        for kind in _CELLS:
            if any(not c for c in self.choices[kind]):
                raise ConfigError(f"space 'darts': every edge needs an op other than 'none' ({kind} cell)")
        vocab = {o for kind in _CELLS for c in self.choices[kind] for o in c}
        self.vocabulary = tuple(o for o in OP_NAMES if o in vocab)
        self.labels = ("input", *self.vocabulary, "output")
        self.channels = check_int("darts", "channels", channels if channels is not None else d["channels"], 2)
        self.layers = check_int("darts", "layers", layers if layers is not None else d["layers"], 3)
        self.num_classes = check_int("darts", "num_classes", num_classes if num_classes is not None else d["num_classes"])
        self.img_size = check_int("darts", "img_size", img_size if img_size is not None else d["img_size"], 8)
        self.in_chans = check_int("darts", "in_chans", in_chans)
        self.search_channels = check_int("darts", "search_channels", search_channels, 2)
        self.search_layers = check_int("darts", "search_layers", search_layers, 3)
        for opt, v in (("channels", self.channels), ("search_channels", self.search_channels)):
            if v % 2:
                raise ConfigError(f"space 'darts': option '{opt}' must be even (factorized reductions split channels), got {v}")
        self.auxiliary = bool(auxiliary)
        if not 0.0 <= float(drop_path_prob) < 1.0:
            raise ConfigError(f"space 'darts': option 'drop_path_prob' must be in [0, 1), got {drop_path_prob}")
        self.drop_path_prob = float(drop_path_prob)
        self._cost_cache: dict[DartsArch, Cost] = {}

    @property
    def label(self) -> str:
        return self.registered_name or (self.name if self.preset == "s0" else f"darts_{self.preset}")

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "preset": self.preset,
            "network": self.network,
            "channels": self.channels,
            "layers": self.layers,
            "num_classes": self.num_classes,
            "auxiliary": self.auxiliary,
            "drop_path_prob": self.drop_path_prob,
            "in_chans": self.in_chans,
            "img_size": self.img_size,
            "search_channels": self.search_channels,
            "search_layers": self.search_layers,
        }
        if self.ops is not None:
            cfg["ops"] = list(self.ops)
        return cfg

    # -- values ---------------------------------------------------------------------------------
    def parse(self, text: Any) -> DartsArch:
        """Parse a genotype and check it belongs to this space: 4 nodes, concat 2..5, two distinct
        inputs per node, and ops available on their edges (never ``none``)."""
        a = DartsArch.parse(text)
        self._check_member(a)
        return a

    def validate(self, arch: Any) -> DartsArch:
        """Parse a string, convert a DARTS ``Genotype`` namedtuple, or check a :class:`DartsArch` belongs here."""
        return self.parse(arch)

    def _check_member(self, a: DartsArch) -> None:
        sp = self.label
        for kind in _CELLS:
            cell = a.cell(kind)
            if len(cell) != 2 * STEPS:
                raise ArchitectureError(
                    f"{sp}: '{kind}' has {len(cell) // 2} nodes ({len(cell)} entries); this space's cells have {STEPS} "
                    f"nodes of 2 entries each"
                )
            if sorted(a.concat(kind)) != list(range(2, 2 + STEPS)):
                raise ArchitectureError(f"{sp}: '{kind}_concat' must be [2, 3, 4, 5], got {list(a.concat(kind))}")
            for k, (op, j) in enumerate(cell):
                node = 2 + k // 2
                e = edge_index(node, j)
                where = f"{kind}[{k}] ({op!r}, {j}) (node {node} <- {j}, edge {e})"
                if k % 2 and cell[k - 1][1] == j:
                    raise ArchitectureError(
                        f"{sp}: {where}: node {node} takes input {j} twice; a DARTS cell keeps 2 distinct incoming edges per node"
                    )
                if op not in self.choices[kind][e]:
                    why = " ('none' is never kept)" if op == "none" else ""
                    raise ArchitectureError(
                        f"{sp}: {where}: op {op!r} is not available on this edge{why}; valid: {', '.join(self.choices[kind][e])}"
                    )

    def _arch(self, arch: Any) -> DartsArch:
        if isinstance(arch, DartsArch):
            self._check_member(arch)
            return arch
        return self.parse(arch if isinstance(arch, str) else str(arch))

    def _random_cell(self, kind: str, rng: np.random.Generator) -> list[tuple[str, int]]:
        cell: list[tuple[str, int]] = []
        for node in range(2, 2 + STEPS):
            inputs = sorted(int(v) for v in rng.choice(node, size=2, replace=False))
            for j in inputs:
                cell.append((pick(rng, self.choices[kind][edge_index(node, j)]), j))
        return cell

    def sample(self, rng: np.random.Generator) -> DartsArch:
        """Uniform: per node 2 distinct inputs, and an op for each (entries ordered by input)."""
        concat = tuple(range(2, 2 + STEPS))
        return DartsArch(tuple(self._random_cell("normal", rng)), concat, tuple(self._random_cell("reduce", rng)), concat)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> DartsArch:
        """In one cell, one node: change the op of one of its edges, or move one edge to another input."""
        a = self._arch(arch)
        kind = _CELLS[int(rng.integers(2))]
        cell = list(a.cell(kind))
        k = int(rng.integers(len(cell)))
        node = 2 + k // 2
        op, j = cell[k]
        other = cell[k ^ 1][1]
        free_inputs = [i for i in range(node) if i not in (j, other)]
        other_ops = [o for o in self.choices[kind][edge_index(node, j)] if o != op]
        if free_inputs and (not other_ops or rng.random() < 0.5):
            nj = pick(rng, free_inputs)
            choices = self.choices[kind][edge_index(node, nj)]
            cell[k] = (op if op in choices else pick(rng, choices), nj)
        elif other_ops:
            cell[k] = (pick(rng, other_ops), j)
        new = {"normal": tuple(a.normal), "reduce": tuple(a.reduce), kind: tuple(cell)}
        return DartsArch(new["normal"], a.normal_concat, new["reduce"], a.reduce_concat)

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> DartsArch:
        """Node-wise uniform crossover: each node's pair of edges from either parent."""
        pa, pb = self._arch(a), self._arch(b)
        cells = {}
        for kind in _CELLS:
            ca, cb = pa.cell(kind), pb.cell(kind)
            take = rng.random(STEPS) < 0.5
            cells[kind] = tuple(e for i in range(STEPS) for e in (ca if take[i] else cb)[2 * i : 2 * i + 2])
        return DartsArch(cells["normal"], pa.normal_concat, cells["reduce"], pa.reduce_concat)

    # -- graphs ---------------------------------------------------------------------------------
    def encode(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        """Op-on-node graph of both cells (22 nodes: per cell the 2 inputs, the 8 chosen edges as
        op nodes with each node's pair ordered by input, and the output), block upper-triangular,
        one-hot labels over ``("input", *vocabulary, "output")``."""
        a = self._arch(arch).sorted()
        n = 2 * _CELL_NODES
        adj = np.zeros((n, n), dtype=np.float32)
        ops = np.zeros((n, len(self.labels)), dtype=np.float32)
        for c, kind in enumerate(_CELLS):
            o = c * _CELL_NODES
            ops[o, 0] = ops[o + 1, 0] = 1
            ops[o + _CELL_NODES - 1, -1] = 1
            for k, (op, j) in enumerate(a.cell(kind)):
                p = o + 2 + k
                ops[p, self.labels.index(op)] = 1
                if j < 2:
                    adj[o + j, p] = 1
                else:
                    adj[o + 2 + 2 * (j - 2), p] = adj[o + 3 + 2 * (j - 2), p] = 1
                adj[p, o + _CELL_NODES - 1] = 1
        return adj, ops

    def decode(self, adjacency: np.ndarray, ops: np.ndarray) -> DartsArch | None:
        adj = (np.asarray(adjacency) > 0.5).astype(np.float32)
        n = 2 * _CELL_NODES
        if adj.shape != (n, n):
            return None
        idx = one_hot_rows(ops, len(self.labels))
        if idx is None or len(idx) != n:
            return None
        cells = {}
        for c, kind in enumerate(_CELLS):
            o = c * _CELL_NODES
            if idx[o] != 0 or idx[o + 1] != 0 or idx[o + _CELL_NODES - 1] != len(self.labels) - 1:
                return None
            cell = []
            for k in range(2 * STEPS):
                p = o + 2 + k
                lab = self.labels[idx[p]]
                if lab in ("input", "output"):
                    return None
                preds = {int(u) - o for u in np.nonzero(adj[:, p])[0]}
                node = 2 + k // 2
                src = None
                for j in range(node):
                    want = {j} if j < 2 else {2 + 2 * (j - 2), 3 + 2 * (j - 2)}
                    if preds == want:
                        src = j
                if src is None:
                    return None
                cell.append((lab, src))
            cells[kind] = tuple(cell)
        concat = tuple(range(2, 2 + STEPS))
        try:
            arch = DartsArch(cells["normal"], concat, cells["reduce"], concat)
            self._check_member(arch)
        except ArchitectureError:
            return None
        a2, o2 = self.encode(arch)
        if not (np.array_equal(a2, adj) and np.array_equal(o2, np.asarray(ops, dtype=np.float32))):
            return None
        return arch

    # -- networks -------------------------------------------------------------------------------
    def build(self, arch: Architecture | Any, num_classes: int | None = None) -> DartsNetwork:
        """The evaluation network. Any valid genotype builds (published ones outside this space, such
        as NASNet's 5-node cells, included)."""
        a = arch if isinstance(arch, DartsArch) else DartsArch.parse(arch if isinstance(arch, str) else str(arch))
        return DartsNetwork(
            a, self.channels, self.layers, num_classes, self.auxiliary, self.drop_path_prob, self.network, self.in_chans
        )

    def supernet(
        self,
        channels: int | None = None,
        layers: int | None = None,
        partial_channels: int = 1,
        edge_normalization: bool | None = None,
        stem: str | None = None,
        channels_last: bool | None = None,
        **unknown: Any,
    ) -> DartsSupernet:
        """The search network: ``channels``/``layers`` default to ``search_channels``/``search_layers``;
        ``partial_channels=K`` > 1 gives PC-DARTS (1/K of the channels through the ops, edge
        normalisation on unless ``edge_normalization=False``); ``stem`` defaults to the space's network;
        ``channels_last`` (``None``: on the CPU) picks the memory layout."""
        if unknown:
            raise ConfigError(
                f"space '{self.label}': unknown supernet option '{next(iter(unknown))}' "
                f"(valid: channels, layers, partial_channels, edge_normalization, stem, channels_last)"
            )
        k = check_int(self.label, "partial_channels", partial_channels)
        return DartsSupernet(
            self.edge_ops["normal"],
            self.edge_ops["reduce"],
            check_int(self.label, "channels", channels if channels is not None else self.search_channels, 2),
            check_int(self.label, "layers", layers if layers is not None else self.search_layers, 3),
            check_choice(self.label, "stem", stem or self.network, tuple(_NETWORK_DEFAULTS)),
            self.in_chans,
            partial_channels=k,
            edge_normalization=edge_normalization,
            channels_last=None if channels_last is None else bool(channels_last),
        )

    def graph(self, arch: Architecture | Any) -> dict[str, list[tuple[str, str, str]]]:
        """Normal and reduction cells as edges ``(from, to, op)`` for drawing (``c_{k-2}``, ``c_{k-1}``, nodes, ``c_{k}``)."""
        a = self.parse(arch)
        out: dict[str, list[tuple[str, str, str]]] = {}
        for name in ("normal", "reduce"):
            cell = getattr(a, name)
            label = lambda j: ("c_{k-2}", "c_{k-1}")[j] if j < 2 else str(j - 2)  # noqa: E731
            edges = [(label(j), str(k // 2), op) for k, (op, j) in enumerate(cell)]
            edges += [(str(i - 2), "c_{k}", "") for i in getattr(a, f"{name}_concat")]
            out[name] = edges
        return out

    def edge_names(self) -> dict[str, list[str]]:
        """Rows of the supernet's ``arch_weights()`` per cell type: ``node 0 <- c_{k-2}``, ..., ``node 3 <- node 2``."""
        source = lambda j: ("c_{k-2}", "c_{k-1}")[j] if j < 2 else f"node {j - 2}"  # noqa: E731
        names = [""] * NUM_EDGES
        for node in range(2, 2 + STEPS):
            for src in range(node):
                names[edge_index(node, src)] = f"node {node - 2} <- {source(src)}"
        return {kind: list(names) for kind in _CELLS}

    def cost(self, arch: Architecture | Any) -> Cost:
        a = arch if isinstance(arch, DartsArch) else DartsArch.parse(arch if isinstance(arch, str) else str(arch))
        hit = self._cost_cache.get(a)
        if hit is not None:
            return hit
        net = DartsNetwork(a, self.channels, self.layers, self.num_classes, False, 0.0, self.network, self.in_chans)
        x = torch.zeros(1, self.in_chans, self.img_size, self.img_size)
        cost = Cost(params=count_params(net), flops=count_macs(net, x))
        if len(self._cost_cache) > 4096:
            self._cost_cache.clear()
        self._cost_cache[a] = cost
        return cost
