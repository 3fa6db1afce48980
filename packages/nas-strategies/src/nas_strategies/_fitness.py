"""The three fitness kinds: a tabular benchmark lookup, a proxy on freshly initialised networks, and an
objective on a trained single-path supernet (with per-candidate BN recalibration)."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from nas_core import Architecture, BenchmarkTable, ConfigError, DataError, NonFiniteError, SearchSpace

from ._bn import recalibrate_bn
from ._helpers import accepted_kwargs, arch_seed, seeded, space_name

__all__ = ["TableFitness", "ProxyFitness", "ObjectiveFitness", "build_loss_fn", "score_with_proxies", "objective_loss"]


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


#: how the label-free default loss of proxy-driven searches is made (recorded in results)
PSEUDO_CLASSES = "cross-entropy on k-means pseudo-classes of the proxy batch (label-free)"


def label_free_targets(
    proxies: Sequence[Any], images: torch.Tensor, targets: torch.Tensor | None, *, loss_objective: str | None,
    num_classes: int, seed: int,
) -> tuple[torch.Tensor | None, str | None]:
    """``(targets, how)``: without labels and without ``loss_objective``, proxies that differentiate a
    classification loss get k-means pseudo-classes of the batch (``nas_core.pseudo_targets``; what
    ``nas proxies`` does label-free), so a proxy search needs no labels and no objective."""
    needy = [p for p in proxies if (getattr(p, "needs_loss", False) or getattr(p, "needs_targets", False))
             and getattr(p, "objective", None) is None]
    if targets is not None or loss_objective is not None or not needy:
        return targets, None
    from nas_core import pseudo_targets

    return pseudo_targets(images, num_classes, seed=seed), PSEUDO_CLASSES


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
        #: raw components of the calibration candidates, until each is scored (see calibrate_on)
        self._known: dict[str, dict[str, float]] = {}

    @property
    def name(self) -> str:
        return getattr(self.proxy, "registered_name", "") or type(self.proxy).__name__

    @property
    def needs_reference(self) -> bool:
        """A proxy that normalises against reference statistics it does not have yet (the unified proxy with
        a preset or given weights): ``calibrate(components)`` must come before ``score``."""
        return (getattr(self.proxy, "reference", False) is None and callable(getattr(self.proxy, "calibrate", None))
                and callable(getattr(self.proxy, "components", None)))

    def calibrate_on(self, archs: Sequence[Architecture]) -> int:
        """Calibrate the proxy on the raw component scores of ``archs`` (the search's first, random candidates:
        a label-free reference set, as UP-NAS normalises against a sample of the space). Returns its size.

        The components are computed exactly as scoring computes them (same network, seeds and inputs), so a
        proxy that can score from components (``score_components``) reuses them when these candidates are
        scored next, instead of running every pass again."""
        from ._distributed import all_gather_sharded

        def components(arch: Architecture) -> dict[str, float] | None:
            if self.space.defect(arch) is not None:
                return None
            with _scoring_setup(self.proxy, self.space, arch, self.images, self.targets, context=self.context,
                                num_classes=self.num_classes, objective=self.objective, seed=self.seed) as (net, x, y, lf):
                try:
                    return {k: float(v) for k, v in self.proxy.components(net, x, y, loss_fn=lf).items()}
                except NonFiniteError:
                    return None

        got = all_gather_sharded(components, list(archs), self.context)
        rows = [r for r in got if r]
        if len(rows) < 2:
            raise ConfigError(f"proxy '{self.name}' needs reference statistics and fewer than 2 of the {len(archs)} "
                              f"first candidates could be scored; raise the population or the budget")
        self.proxy.calibrate({k: [r[k] for r in rows if k in r] for k in rows[0]})
        if callable(getattr(self.proxy, "score_components", None)):
            self._known = {str(a): r for a, r in zip(archs, got) if r}
        return len(rows)

    def score_network(self, proxy: Any, arch: Architecture) -> float:
        return score_with_proxies([proxy], self.space, arch, self.images, self.targets, context=self.context,
                                  num_classes=self.num_classes, objective=self.objective, seed=self.seed)[0]

    def __call__(self, arch: Architecture) -> dict[str, float]:
        known = self._known.pop(str(arch), None)
        raw = float(self.proxy.score_components(known)) if known is not None else self.score_network(self.proxy, arch)
        if not math.isfinite(raw):  # undefined on this cell: the worst fitness (the reason: undefined_reason)
            return {"fitness": math.nan, "proxy": raw, "undefined": 1.0}
        return {"fitness": self.sign * raw, "proxy": raw}


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
    """Scores of one freshly initialised network (built once) under every proxy, in order.

    A score that is undefined on this cell is NaN (never an exception: the search goes on and ranks the cell
    last, see :func:`undefined_reason`); a cell with a structural defect (``space.defect``, e.g. an NB201 cell
    with no path from input to output) is not built at all and scores NaN under every proxy.
    """
    if space.defect(arch) is not None:
        return [math.nan] * len(proxies)
    net, loss_fn = _build_for_scoring(space, arch, images, context=context, num_classes=num_classes,
                                      objective=objective, seed=seed)
    out = [math.nan] * len(proxies)
    # proxies of one family score together (``Proxy.score_together``: shared passes), unless one needs the
    # objective's pretext targets
    groups: dict[Any, list[int]] = {}
    for i, proxy in enumerate(proxies):
        key = ("alone", i) if _wants_pretext(proxy, targets, objective) else getattr(type(proxy).score_together, "__func__", type(proxy))
        groups.setdefault(key, []).append(i)
    for key, idx in groups.items():
        xi, yi = _pretext_inputs(images, objective) if isinstance(key, tuple) else (images, targets)
        group = [proxies[i] for i in idx]
        with seeded(_proxy_seed(seed, arch, idx[0]), context.device):
            with context.autocast():
                vals = type(group[0]).score_together(group, net, xi, yi, loss_fn=loss_fn)
        for i, v in zip(idx, vals):
            out[i] = float(v) if math.isfinite(float(v)) else math.nan
    return out


def _build_for_scoring(space: SearchSpace, arch: Architecture, images: torch.Tensor, *, context: Any, num_classes: int,
                       objective: Any, seed: int) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], torch.Tensor] | None]:
    """The freshly initialised network a proxy scores ``arch`` on (and the objective's heads set up for it),
    seeded from (run seed, architecture)."""
    with seeded(arch_seed(seed, arch), context.device):
        net = context.to_device(space.build(arch, num_classes=num_classes))
        if objective is None:
            return net, None
        objective.setup(net.feature_info, in_chans=int(images.shape[1]), img_size=int(images.shape[-1]))
        objective.to(context.device)
        return net, objective_loss(objective)


def _wants_pretext(proxy: Any, targets: torch.Tensor | None, objective: Any) -> bool:
    """A proxy that needs targets, on unlabelled images, with an objective: it scores the pretext task's."""
    return targets is None and getattr(proxy, "needs_targets", False) and objective is not None


def _pretext_inputs(images: torch.Tensor, objective: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    pre = objective.pretext_targets(images)
    return pre if pre is not None else (images, None)


@contextlib.contextmanager
def _scoring_setup(proxy: Any, space: SearchSpace, arch: Architecture, images: torch.Tensor, targets: torch.Tensor | None,
                   *, context: Any, num_classes: int, objective: Any, seed: int) -> Iterator[tuple[Any, ...]]:
    """``(net, images, targets, loss_fn)`` for ``proxy`` alone on ``arch``, inside the seeding and autocast that
    :func:`score_with_proxies` gives a single proxy: what it computes here equals what scoring computes."""
    net, loss_fn = _build_for_scoring(space, arch, images, context=context, num_classes=num_classes,
                                      objective=objective, seed=seed)
    x, y = _pretext_inputs(images, objective) if _wants_pretext(proxy, targets, objective) else (images, targets)
    with seeded(_proxy_seed(seed, arch, 0), context.device), context.autocast():
        yield net, x, y, loss_fn


def _proxy_seed(seed: int, arch: Architecture, first: int) -> int:
    """The seed a group of proxies scores under, ``first`` the group's first position in the proxy list (a
    proxy alone: 0)."""
    return arch_seed(seed, arch) + 7919 * (first + 1)


def undefined_reason(space: SearchSpace, arch: Architecture, what: str) -> str:
    """Why ``what`` (a fitness, a proxy score) is undefined on ``arch``: the space's defect, or a non-finite value."""
    defect = space.defect(arch)
    if defect is not None:
        return f"{what} is undefined: the cell has {defect}"
    return f"{what} is not finite on this network"


def objective_loss(objective: Any) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """``loss_fn(net, images)`` for proxies that need a loss: the objective's label-free loss."""

    def loss_fn(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return objective.loss(net, images)

    return loss_fn


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
