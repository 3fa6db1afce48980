"""Shared machinery of the strategies: candidate pools, cost constraints, fitness functions
(objective on a one-shot supernet, proxy on fresh networks, tabular benchmark), sharded evaluation,
gradient synchronisation and result assembly.

Everything here meets spaces, objectives and proxies only through the nas-core contracts.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import warnings
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from nas_core import (
    Architecture,
    BenchmarkTable,
    Candidate,
    ConfigError,
    DataError,
    SearchResult,
    SearchSpace,
)

__all__ = [
    "CandidatePool",
    "Constraints",
    "TableFitness",
    "ProxyFitness",
    "ObjectiveFitness",
    "arch_seed",
    "fingerprint",
    "first_images",
    "proxy_images",
    "split_batch",
    "evaluate_sharded",
    "sync_grads",
    "sync_buffers",
    "broadcast_module",
    "recalibrate_bn",
    "space_name",
    "make_result",
    "num_classes_for",
    "build_loss_fn",
]


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-serialisable object (or of a tensor's bytes)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        data = t.numpy().tobytes() + str(tuple(t.shape)).encode() + str(t.dtype).encode()
        return hashlib.sha256(data).hexdigest()[:16]
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def arch_seed(seed: int, arch: Any) -> int:
    """A torch seed that depends only on the run seed and the architecture (not on evaluation order),
    so a candidate scores the same on any rank, in any generation, before or after a resume."""
    digest = hashlib.sha256(f"{int(seed)}|{arch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63 - 1)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Fork the global torch RNG (CPU, and the CUDA device in use), seed it, and restore it on exit."""
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``images`` or ``(images, labels, ...)`` from a DataLoader -> (images, labels or None)."""
    if isinstance(batch, (list, tuple)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def first_images(data: Any, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A fixed batch of ``n`` images (and labels when the data yields them) drawn with ``seed``."""
    if data is None:
        raise DataError("this strategy needs image data (pass data=..., e.g. nas_core.load_data())")
    total = len(data)
    if total == 0:
        raise DataError("the data holds no images")
    idx = np.random.default_rng(seed).permutation(total)[: min(n, total)]
    imgs, labels = [], []
    for i in idx.tolist():
        item = data[i]
        if isinstance(item, (tuple, list)):
            imgs.append(item[0])
            labels.append(int(item[1]))
        else:
            imgs.append(item)
    images = torch.stack(imgs)
    targets = torch.tensor(labels, dtype=torch.long) if labels else None
    return images, targets


def proxy_images(data: Any, n: int, seed: int, proxies: Sequence[Any], space: SearchSpace) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fixed batch proxies score networks on: ``n`` images of the data, or, without data and when every
    proxy is data-free, seeded uniform noise at the space's input size (``img_size``, default 32)."""
    if data is None and proxies and all(getattr(p, "data_free", False) for p in proxies):
        size = int(getattr(space, "img_size", 32) or 32)
        chans = int(getattr(space, "in_chans", 3) or 3)
        g = torch.Generator().manual_seed(int(seed))
        return torch.rand(n, chans, size, size, generator=g), None
    if data is None:
        names = ", ".join(getattr(p, "registered_name", "") or type(p).__name__ for p in proxies if not getattr(p, "data_free", False))
        raise DataError(f"proxy {names} scores networks on images: pass data=... (e.g. nas_core.load_data())")
    return first_images(data, n, seed)


def space_name(space: SearchSpace) -> str:
    return space.registered_name or space.name or type(space).__name__


def num_classes_for(space: SearchSpace, data: Any, num_classes: int | None) -> int:
    """Classes of the standalone networks proxies score: the option, the data's, the space's, or 10."""
    if num_classes is not None:
        return int(num_classes)
    for src in (getattr(data, "num_classes", None), getattr(space, "num_classes", None)):
        if src:
            return int(src)
    return 10


def accepted_kwargs(fn: Callable[..., Any], hints: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The subset of ``hints`` that ``fn`` accepts as keywords, and the names it does not."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}, list(hints)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(hints), []
    ok = {k: v for k, v in hints.items() if k in params}
    return ok, [k for k in hints if k not in params]


#: other keyword names a space's mutate() may use for the evolution's mutation hints
MUTATION_HINT_ALIASES: dict[str, tuple[str, ...]] = {
    "mutation_prob": ("block_prob", "block_mutation_prob", "p_m"),
    "depth_mutation_prob": ("depth_prob", "p_d"),
}


# ---------------------------------------------------------------------------------------------
# candidate pools
# ---------------------------------------------------------------------------------------------
class CandidatePool:
    """The architectures a search may visit: the whole space, or a fixed list of members (the rows of a
    tabular benchmark that covers only part of the space).

    With members, sampling draws a member uniformly; mutation and crossover use the space's operators and
    accept a child only when it is a member, otherwise they map it to the nearest member (by the space's
    encoding distance), so a table-driven search never asks for an architecture the table lacks.
    ``decode_nearest`` does the same for decoded graphs.
    """

    def __init__(
        self,
        space: SearchSpace,
        members: Sequence[Architecture] | None = None,
        *,
        mutation_hints: Mapping[str, Any] | None = None,
        tries: int = 10,
    ):
        self.space = space
        self.tries = max(1, int(tries))
        self._mutate_kwargs: dict[str, Any] = {}
        hints = {k: v for k, v in (mutation_hints or {}).items() if v is not None}
        rejected = []
        for name, value in hints.items():
            # a hint goes to the first of its names the space's mutate() accepts (nas-spaces' ViT calls P_d
            # and P_m depth_prob and block_prob)
            for alias in (name, *MUTATION_HINT_ALIASES.get(name, ())):
                ok, _ = accepted_kwargs(space.mutate, {alias: value})
                if ok:
                    self._mutate_kwargs.update(ok)
                    break
            else:
                rejected.append(name)
        if rejected:
            warnings.warn(
                f"space '{space_name(space)}' mutate() does not accept {', '.join(rejected)}; those mutation "
                f"hints are ignored (they apply to spaces with such knobs, e.g. depth/block mutation of ViTs)",
                stacklevel=3,
            )
        self.members: list[Architecture] | None = None
        self._index: dict[str, int] = {}
        self._vecs: np.ndarray | None = None
        if members is not None:
            uniq: dict[str, Architecture] = {}
            for a in members:
                uniq.setdefault(str(a), a)
            if not uniq:
                raise ConfigError("the candidate pool is empty")
            self.members = list(uniq.values())
            self._index = {s: i for i, s in enumerate(uniq)}

    # -- membership -------------------------------------------------------------------------------
    @property
    def restricted(self) -> bool:
        return self.members is not None

    def __len__(self) -> int:
        return len(self.members) if self.members is not None else 0

    def __contains__(self, arch: object) -> bool:
        return self.members is None or str(arch) in self._index

    # -- operators --------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        if self.members is None:
            return self.space.sample(rng)
        return self.members[int(rng.integers(len(self.members)))]

    def _space_mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        return self.space.mutate(arch, rng, **self._mutate_kwargs)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        child = self._space_mutate(arch, rng)
        if self.members is None:
            return child
        for _ in range(self.tries - 1):
            if str(child) in self._index and str(child) != str(arch):
                return self.members[self._index[str(child)]]
            child = self._space_mutate(arch, rng)
        if str(child) in self._index and str(child) != str(arch):
            return self.members[self._index[str(child)]]
        return self.nearest(child, rng, exclude=(str(arch),))

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        child = self.space.crossover(a, b, rng)
        if self.members is None or str(child) in self._index:
            return child if self.members is None else self.members[self._index[str(child)]]
        return self.nearest(child, rng)

    # -- nearest member ---------------------------------------------------------------------------
    def _flat(self, arch: Architecture) -> np.ndarray:
        adj, ops = self.space.encode(arch)
        return np.concatenate([np.asarray(adj, np.float32).ravel(), 0.5 * np.asarray(ops, np.float32).ravel()])

    def _member_vectors(self) -> np.ndarray | None:
        if self._vecs is None and self.members is not None:
            flats = [self._flat(m) for m in self.members]
            if len({f.shape for f in flats}) == 1:
                self._vecs = np.stack(flats)
            else:
                self._vecs = np.zeros((0, 0), np.float32)  # mixed shapes: fall back to space.distance
        return None if self._vecs is None or self._vecs.size == 0 else self._vecs

    def distances(self, arch: Architecture) -> np.ndarray:
        """Distance from ``arch`` to every member (the space's ``distance``; vectorised for the default one)."""
        assert self.members is not None
        vecs = self._member_vectors()
        default_distance = type(self.space).distance is SearchSpace.distance
        if vecs is not None and default_distance:
            v = self._flat(arch)
            if v.shape == vecs.shape[1:]:
                return np.abs(vecs - v).sum(axis=1)
        return np.array([self.space.distance(arch, m) for m in self.members], dtype=np.float64)

    def nearest(self, arch: Architecture, rng: np.random.Generator | None = None, exclude: Iterable[str] = ()) -> Architecture:
        """The member closest to ``arch`` (``arch`` itself when it is a member); ties broken by ``rng``."""
        if self.members is None:
            return arch
        key = str(arch)
        excluded = set(exclude)
        if key in self._index and key not in excluded:
            return self.members[self._index[key]]
        d = self.distances(arch).astype(np.float64)
        for s in excluded:
            if s in self._index:
                d[self._index[s]] = np.inf
        best = np.flatnonzero(d == d.min())
        pick = int(best[int(rng.integers(len(best)))]) if rng is not None and len(best) > 1 else int(best[0])
        return self.members[pick]


# ---------------------------------------------------------------------------------------------
# constraints
# ---------------------------------------------------------------------------------------------
class Constraints:
    """Hard limits on ``space.cost(arch)``: ``max_params`` and ``max_flops`` (absolute counts)."""

    def __init__(self, space: SearchSpace, max_params: float | None = None, max_flops: float | None = None):
        for name, v in (("max_params", max_params), ("max_flops", max_flops)):
            if v is not None and not v > 0:
                raise ConfigError(f"{name}: must be positive, got {v}")
        self.space = space
        self.max_params = max_params
        self.max_flops = max_flops
        self._cache: dict[str, tuple[int, int]] = {}

    @property
    def active(self) -> bool:
        return self.max_params is not None or self.max_flops is not None

    def cost(self, arch: Architecture) -> tuple[int, int]:
        key = str(arch)
        if key not in self._cache:
            c = self.space.cost(arch)
            self._cache[key] = (int(c.params), int(c.flops))
        return self._cache[key]

    def ok(self, arch: Architecture) -> bool:
        if not self.active:
            return True
        params, flops = self.cost(arch)
        if self.max_params is not None and params > self.max_params:
            return False
        if self.max_flops is not None and flops > self.max_flops:
            return False
        return True

    def describe(self) -> str:
        parts = []
        if self.max_params is not None:
            parts.append(f"max_params={self.max_params:g}")
        if self.max_flops is not None:
            parts.append(f"max_flops={self.max_flops:g}")
        return ", ".join(parts) or "no constraints"

    def sample(self, pool: CandidatePool, rng: np.random.Generator, *, exclude: set[str] | None = None, tries: int = 2000) -> Architecture | None:
        """A feasible architecture not in ``exclude`` (``None`` when ``tries`` draws found none)."""
        for _ in range(tries):
            a = pool.sample(rng)
            if (exclude is None or str(a) not in exclude) and self.ok(a):
                return a
        return None


# ---------------------------------------------------------------------------------------------
# fitness functions
# ---------------------------------------------------------------------------------------------
class TableFitness:
    """Fitness looked up in a tabular benchmark.

    ``metric``: ``"val_accuracy"`` (the ground truth), the name of a published proxy in the table, or
    ``"unified"``: ``sum_i w_i * z_i`` over the published proxies named in ``weights``, each standardised over
    the table's rows by rank (a score's mid-rank position ``F`` mapped to ``(F - 0.5) * sqrt(12)``, robust to
    the heavy tails and ``-1e8`` failure sentinels of published scores; a missing score counts as z = 0): the
    normalisation ``gradient_ascent`` uses. Every candidate also records its ``val_accuracy`` (for
    reporting; never used for ranking unless it is the metric).
    """

    kind = "table"

    def __init__(
        self,
        table: BenchmarkTable,
        space: SearchSpace,
        *,
        metric: str = "val_accuracy",
        weights: Mapping[str, float] | None = None,
    ):
        self.table = table
        self.space = space
        self.metric = metric
        self.rows: dict[str, Any] = {}
        bad = 0
        for row in table:
            try:
                a = space.parse(row.arch)
            except Exception:  # noqa: BLE001 - rows of another space
                bad += 1
                continue
            self.rows[str(a)] = row
        if not self.rows:
            raise DataError(
                f"none of the {len(table)} architectures of benchmark table {table.source or '<memory>'} parses in "
                f"space '{space_name(space)}'; use the table of this space"
            )
        self.members = [space.parse(k) for k in self.rows]
        names = table.proxy_names()
        if metric in ("val_accuracy", "accuracy"):
            self.metric = "val_accuracy"
            self.weights: dict[str, float] = {}
        elif metric == "unified":
            if not weights:
                raise ConfigError("table_metric='unified' needs unified_weights={proxy: weight, ...}")
            missing = [k for k in weights if k not in names]
            if missing:
                raise ConfigError(
                    f"unified_weights names proxies the table lacks: {', '.join(missing)} (table has: {', '.join(names)})"
                )
            self.weights = {k: float(v) for k, v in weights.items()}
        elif metric in names:
            self.weights = {metric: 1.0}
        else:
            raise ConfigError(
                f"table_metric: '{metric}' is neither 'val_accuracy', 'unified' nor a proxy of the table "
                f"(table has: {', '.join(names) or 'no proxies'})"
            )
        self._ref: dict[str, np.ndarray] = {}
        for name in self.weights:
            vals = np.array([r.proxies.get(name, np.nan) for r in self.rows.values()], dtype=np.float64)
            self._ref[name] = np.sort(vals[np.isfinite(vals)])
        if self.metric != "val_accuracy" and self.metric != "unified":
            # a single proxy: rows lacking it cannot be ranked, keep them out of the pool
            self.members = [a for a in self.members if math.isfinite(self.rows[str(a)].proxies.get(metric, float("nan")))]
            if not self.members:
                raise DataError(f"no row of the table has a finite '{metric}' score")

    @property
    def name(self) -> str:
        return "table" if self.metric == "val_accuracy" else f"table:{self.metric}"

    def row(self, arch: Architecture) -> Any:
        key = str(arch)
        if key not in self.rows:
            raise DataError(
                f"architecture {key} is not in benchmark table {self.table.source or '<memory>'}; table-driven "
                f"searches stay inside the table's rows"
            )
        return self.rows[key]

    def unified(self, arch: Architecture) -> float:
        row = self.row(arch)
        total = 0.0
        for name, w in self.weights.items():
            v = row.proxies.get(name)
            ref = self._ref[name]
            if v is None or not math.isfinite(v) or ref.size == 0:
                continue
            f = (np.searchsorted(ref, v, side="left") + np.searchsorted(ref, v, side="right")) / (2.0 * ref.size)
            total += w * (f - 0.5) * math.sqrt(12.0)
        return float(total)

    def __call__(self, arch: Architecture) -> dict[str, float]:
        row = self.row(arch)
        if self.metric == "val_accuracy":
            fit = float(row.val_accuracy)
        elif self.metric == "unified":
            fit = self.unified(arch)
        else:
            fit = float(row.proxies[self.metric])
        return {"fitness": fit, "val_accuracy": float(row.val_accuracy)}


def build_loss_fn(
    proxies: Sequence[Any],
    *,
    has_targets: bool,
    loss_objective: str | None,
    what: str,
) -> Any:
    """The objective (created through the registry) that gives label-free proxies their loss, or ``None``.

    Raises a clear error before any compute when a proxy needs a loss or targets and none can be had.
    """
    # a proxy whose ``objective`` attribute is set (nas_core.search does it when a run names an objective)
    # differentiates that objective's loss itself
    needy = [
        p for p in proxies
        if (getattr(p, "needs_loss", False) or getattr(p, "needs_targets", False)) and getattr(p, "objective", None) is None
    ]
    if not needy or (has_targets and loss_objective is None):
        return None
    if loss_objective is None:
        names = ", ".join(getattr(p, "registered_name", "") or type(p).__name__ for p in needy)
        raise ConfigError(
            f"{what}: proxy {names} needs a loss (or targets), but the data has no labels. Pass "
            f"loss_objective='<a registered label-free objective, e.g. rotation>' so the loss comes from the "
            f"objective (label-free), or labelled data (labels=True)"
        )
    from nas_core import create_objective

    return create_objective(loss_objective)


class ProxyFitness:
    """Training-free fitness: ``proxy.score`` of a freshly initialised standalone network.

    The network's initialisation and any randomness inside the proxy are seeded from (run seed,
    architecture), so a score does not depend on which rank computes it or when. Proxies whose
    ``higher_is_better`` is false are negated into the fitness (the raw value is kept as ``proxy``).
    """

    kind = "proxy"

    def __init__(
        self,
        proxy: Any,
        space: SearchSpace,
        images: torch.Tensor,
        targets: torch.Tensor | None,
        *,
        context: Any,
        num_classes: int,
        loss_objective: Any = None,
        seed: int = 0,
    ):
        self.proxy = proxy
        self.space = space
        self.context = context
        self.images = context.to_device(images)
        self.targets = None if targets is None else context.to_device(targets)
        self.num_classes = num_classes
        self.objective = loss_objective
        self.seed = seed
        self.sign = 1.0 if getattr(proxy, "higher_is_better", True) else -1.0

    @property
    def name(self) -> str:
        return getattr(self.proxy, "registered_name", "") or type(self.proxy).__name__

    def score_network(self, proxy: Any, arch: Architecture) -> float:
        return score_with_proxies([proxy], self.space, arch, self.images, self.targets, context=self.context,
                                  num_classes=self.num_classes, objective=self.objective, seed=self.seed)[0]

    def __call__(self, arch: Architecture) -> dict[str, float]:
        raw = self.score_network(self.proxy, arch)
        fit = self.context.check_finite(self.sign * raw, f"proxy '{self.name}' score", architecture=str(arch))
        return {"fitness": fit, "proxy": raw}


def score_with_proxies(
    proxies: Sequence[Any],
    space: SearchSpace,
    arch: Architecture,
    images: torch.Tensor,
    targets: torch.Tensor | None,
    *,
    context: Any,
    num_classes: int,
    objective: Any = None,
    seed: int = 0,
) -> list[float]:
    """Scores of one freshly initialised network (built once) under every proxy, in order."""
    s = arch_seed(seed, arch)
    with seeded(s, context.device):
        net = space.build(arch, num_classes=num_classes)
        net = context.to_device(net)
        loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None
        x, y = images, targets
        if objective is not None:
            objective.setup(net.feature_info, in_chans=int(images.shape[1]), img_size=int(images.shape[-1]))
            objective.to(context.device)
            loss_fn = objective_loss(objective)

    out = []
    for i, proxy in enumerate(proxies):
        xi, yi = x, y
        if yi is None and getattr(proxy, "needs_targets", False) and objective is not None:
            pre = objective.pretext_targets(images)
            if pre is not None:
                xi, yi = pre
        with seeded(s + 7919 * (i + 1), context.device):
            with context.autocast():
                v = proxy.score(net, xi, yi, loss_fn=loss_fn)
        name = getattr(proxy, "registered_name", "") or type(proxy).__name__
        out.append(context.check_finite(float(v), f"proxy '{name}' score", architecture=str(arch)))
    return out


def objective_loss(objective: Any) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """``loss_fn(net, images)`` for proxies that need a loss: the objective's label-free loss."""

    def loss_fn(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return objective.loss(net, images)

    return loss_fn


@contextlib.contextmanager
def _bn_cumulative(module: nn.Module) -> Iterator[list[nn.modules.batchnorm._BatchNorm]]:
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in bns]
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        yield bns
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom


@torch.no_grad()
def recalibrate_bn(module: nn.Module, batches: Sequence[torch.Tensor], forward: Callable[[torch.Tensor], Any]) -> int:
    """Reset batch-norm running statistics and re-estimate them on ``batches`` (SPOS's per-candidate BN
    recalibration). Returns the number of BN layers recalibrated (0: nothing to do)."""
    was_training = module.training
    with _bn_cumulative(module) as bns:
        if bns:
            module.train()
            for x in batches:
                forward(x)
    module.train(was_training)
    return len(bns)


class ObjectiveFitness:
    """One-shot fitness: the objective's label-free ``score`` of the sub-network ``arch`` inside a trained
    single-path supernet, on held-out batches, with batch-norm statistics recalibrated for the candidate
    on calibration batches first (the candidate's score does not depend on what was evaluated before)."""

    kind = "objective"

    def __init__(self, objective: Any, supernet: nn.Module, calib: Sequence[torch.Tensor], heldout: Sequence[torch.Tensor], *,
                 context: Any, heldout_targets: Sequence[torch.Tensor] | None = None):
        self.objective = objective
        self.supernet = supernet
        self.calib = list(calib)
        self.heldout = list(heldout)
        self.context = context
        # supervised baselines score against the held-out labels (when their score() takes targets)
        self.targets = None
        if heldout_targets is not None and getattr(objective, "requires_labels", False):
            if accepted_kwargs(objective.score, {"targets": None})[0]:
                self.targets = list(heldout_targets)

    @property
    def name(self) -> str:
        return getattr(self.objective, "registered_name", "") or type(self.objective).__name__

    def __call__(self, arch: Architecture) -> dict[str, float]:
        net = self.supernet
        net.set_active(arch)
        with self.context.autocast():
            recalibrate_bn(net, self.calib, lambda x: net(x))
        net.eval()
        self.objective.eval()
        vals = []
        with torch.no_grad(), self.context.autocast():
            for i, x in enumerate(self.heldout):
                if self.targets is not None:
                    vals.append(float(self.objective.score(net, x, targets=self.targets[i])))
                else:
                    vals.append(float(self.objective.score(net, x)))
        fit = self.context.check_finite(float(np.mean(vals)), f"objective '{self.name}' score", architecture=str(arch))
        return {"fitness": fit}


def evaluate_sharded(
    fitness: Callable[[Architecture], dict[str, float]],
    archs: Sequence[Architecture],
    context: Any,
    *,
    desc: str = "evaluating",
) -> list[dict[str, float]]:
    """Evaluate ``archs`` with this rank's share (round-robin) and gather every rank's scores, in order.
    Each evaluation is reported to ``nas_candidate_evaluated`` (main rank)."""
    indexed = list(enumerate(archs))
    mine = context.shard(indexed)
    local: list[tuple[int, dict[str, float]]] = []
    for i, a in context.progress(mine, total=len(mine), desc=desc):
        local.append((i, fitness(a)))
    gathered = context.all_gather_object(local)
    out: list[dict[str, float] | None] = [None] * len(archs)
    for part in gathered:
        for i, s in part:
            out[i] = {k: float(v) for k, v in s.items()}
    missing = [i for i, s in enumerate(out) if s is None]
    if missing:  # pragma: no cover - would be a bug in sharding
        raise RuntimeError(f"candidates {missing[:5]} were evaluated by no rank")
    for a, s in zip(archs, out):
        if context.is_main:
            context.candidate_evaluated(a, s)
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# distributed helpers (explicit all-reduce through the context; no-ops in one process)
# ---------------------------------------------------------------------------------------------
def sync_grads(params: Sequence[torch.Tensor], context: Any) -> None:
    """Average ``.grad`` over ranks in one flat all-reduce (missing grads count as zeros)."""
    if not context.distributed or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    context.all_reduce_mean(flat)
    off = 0
    for p in params:
        n = p.numel()
        p.grad = flat[off : off + n].view_as(p).clone()
        off += n


def reduce_tensors(tensors: Sequence[torch.Tensor], context: Any) -> list[torch.Tensor]:
    """Mean over ranks of a list of tensors (one flat all-reduce)."""
    if not context.distributed or not tensors:
        return list(tensors)
    flat = torch.cat([t.reshape(-1) for t in tensors])
    context.all_reduce_mean(flat)
    out, off = [], 0
    for t in tensors:
        out.append(flat[off : off + t.numel()].view_as(t).clone())
        off += t.numel()
    return out


def sync_buffers(module: nn.Module, context: Any) -> None:
    """Average floating-point buffers (BN running statistics) over ranks so every rank holds the same state."""
    if not context.distributed:
        return
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if bufs:
        for b, r in zip(bufs, reduce_tensors([b.detach() for b in bufs], context)):
            b.data.copy_(r)


def broadcast_module(module: nn.Module, context: Any) -> None:
    """Give every rank rank 0's parameters and buffers (identical start)."""
    if not context.distributed:
        return
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    state = context.broadcast_object(state)
    module.load_state_dict(state)


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
def make_result(
    strategy: Any,
    space: SearchSpace,
    evaluated: Sequence[tuple[Architecture, Mapping[str, float]]],
    context: Any,
    *,
    kind: str,
    evaluator_name: str | None,
    extra: Mapping[str, Any] | None = None,
    arch_weights: dict[str, Any] | None = None,
    arch_weights_history: list[dict[str, Any]] | None = None,
    best: Architecture | None = None,
) -> SearchResult:
    """A SearchResult with candidates ranked by fitness (best first; ties keep evaluation order)."""
    order = sorted(range(len(evaluated)), key=lambda i: (-_fit(evaluated[i][1]), i))
    cands = [Candidate(evaluated[i][0], dict(evaluated[i][1])) for i in order]
    if best is None:
        if not cands:
            raise ConfigError("the search evaluated no architecture (check the budget and the constraints)")
        best = cands[0].arch
    return SearchResult(
        best=best,
        candidates=cands,
        history=context.epoch_history(),
        space=space_name(space),
        space_config=space.config(),
        strategy=getattr(strategy, "registered_name", "") or type(strategy).__name__,
        objective=evaluator_name if kind == "objective" else None,
        proxy=evaluator_name if kind == "proxy" else None,
        arch_weights=arch_weights,
        arch_weights_history=arch_weights_history,
        cost=space.cost(best).to_dict(),
        seed=context.seed,
        versions=_versions(),
        extra=dict(extra or {}),
    )


def _fit(scores: Mapping[str, float]) -> float:
    v = float(scores.get("fitness", float("nan")))
    return v if math.isfinite(v) else -math.inf


def _versions() -> dict[str, str]:
    from nas_core import __version__ as core_version

    from .__about__ import __version__

    return {"nas-core": core_version, "nas-strategies": __version__}

