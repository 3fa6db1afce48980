"""The torch-side contracts: supernets, objectives, proxies, strategies, and the compatibility check."""

from __future__ import annotations

import abc
import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

import torch
import torch.nn as nn

from ._arch import Architecture, SearchSpace
from ._errors import IncompatibleError, NasError, NonFiniteError
from ._features import FeatureInfo
from ._result import SearchResult
from ._table import BenchmarkTable

if TYPE_CHECKING:  # pragma: no cover
    from ._context import RunContext
    from ._data import ImageData

__all__ = [
    "Supernet",
    "Objective",
    "Proxy",
    "Strategy",
    "LossFn",
    "forward_features",
    "evaluator_kind",
    "component_name",
    "Incompatibility",
    "find_incompatibility",
]

#: A loss a proxy can differentiate: ``loss_fn(net, images) -> scalar tensor``.
LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def forward_features(backbone: nn.Module, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
    """Multi-scale features of any backbone honouring the contract.

    Uses ``backbone.forward_features`` when the module has a classifier (standalone networks built
    with ``num_classes``), else ``backbone(x)``. ``mask=`` (a boolean patch mask) is passed only to
    backbones whose ``supports_patch_mask`` is true.
    """
    if "mask" in kwargs and (kwargs["mask"] is None or not getattr(_unwrap(backbone), "supports_patch_mask", False)):
        kwargs.pop("mask")
    fn = getattr(backbone, "forward_features", None)
    if fn is None:
        inner = _unwrap(backbone)
        fn = getattr(inner, "forward_features", None) if inner is not backbone and getattr(inner, "num_classes", None) else None
    out = fn(x, **kwargs) if fn is not None else backbone(x, **kwargs)
    if isinstance(out, torch.Tensor):
        return [out]
    return list(out)


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside DDP/compile wrappers."""
    inner = getattr(module, "module", None)
    if isinstance(inner, nn.Module):
        return inner
    return getattr(module, "_orig_mod", module)


class Supernet(nn.Module):
    """Base class of weight-sharing supernets.

    ``forward(x, *, arch=None, mask=None) -> list[Tensor]`` returns multi-scale NCHW features
    matching :attr:`feature_info`. Capabilities:

    ``differentiable``
        :meth:`arch_parameters` (mixing logits), :meth:`weight_parameters`, :meth:`discretize`
        and :meth:`arch_weights` (softmaxed, for history and plots).
    ``single_path``
        :meth:`set_active` selects the sub-network used by later forwards (or pass ``arch=``);
        weights are shared; :meth:`extract` may return a standalone sub-network.
    ``patch_mask``
        ``forward(x, mask=bool[B, H/p, W/p])`` hides the masked patches (token masking).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset()
    supports_patch_mask: bool = False
    feature_info: FeatureInfo

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    # -- differentiable -------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (empty for supernets that are not differentiable)."""
        return []

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not an architecture parameter."""
        arch_ids = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch_ids]

    def discretize(self) -> Architecture:
        """The architecture the current architecture parameters select."""
        raise IncompatibleError(f"{type(self).__name__} is not differentiable: it has no discretize()")

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Softmaxed architecture weights by cell type, ``[edges, ops]`` each."""
        return {}

    def op_names(self) -> dict[str, Sequence[Any]]:
        """Candidate operation names per cell type (columns of :meth:`arch_weights`); a cell type maps to
        one list for all edges, or to a list of per-edge lists when edges have different op sets."""
        return {}

    # -- single path ----------------------------------------------------------------------------
    def set_active(self, arch: Architecture | None) -> None:
        """Select the sub-network later forwards use (``None`` for the full supernet where defined)."""
        raise IncompatibleError(f"{type(self).__name__} is not single-path: it has no set_active()")

    def extract(self, arch: Architecture) -> nn.Module:
        """A standalone network for ``arch`` that inherits the shared weights."""
        raise IncompatibleError(f"{type(self).__name__} cannot extract standalone sub-networks")


class Objective(nn.Module):
    """Base class of objectives. An objective owns its heads and batch transforms.

    Call :meth:`setup` once with the backbone's ``feature_info`` before :meth:`loss`/:meth:`score`.
    ``loss`` is differentiable and drives training; ``score`` is a label-free quality estimate
    (higher is better) that is repeatable: any randomness (masks, rotations, permutations) comes
    from a fixed seed.
    """

    requires_labels: ClassVar[bool] = False
    registered_name: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every objective gets the same guard rails: set up before use, labels when required.
        super().__init_subclass__(**kwargs)
        for meth in ("loss", "score"):
            fn = cls.__dict__.get(meth)
            if fn is not None and not getattr(fn, "_nas_guarded", False):
                setattr(cls, meth, _guard(fn, meth))

    def __init__(self) -> None:
        super().__init__()
        self._feature_info: FeatureInfo | None = None
        self.in_chans = 3
        self.img_size = 32

    @property
    def is_setup(self) -> bool:
        return self._feature_info is not None

    @property
    def feature_info(self) -> FeatureInfo:
        if self._feature_info is None:
            raise NasError(
                f"objective '{self.registered_name or type(self).__name__}' is not set up: call "
                f"objective.setup(backbone.feature_info, in_chans=..., img_size=...) first"
            )
        return self._feature_info

    def setup(self, feature_info: FeatureInfo | Sequence[Mapping[str, Any]], in_chans: int = 3, img_size: int = 32) -> None:
        """Build heads/decoders for a backbone described by ``feature_info`` (subclasses extend this)."""
        self._feature_info = FeatureInfo.coerce(feature_info)
        self.in_chans = int(in_chans)
        self.img_size = int(img_size)
        self.build_heads(self._feature_info)

    def build_heads(self, feature_info: FeatureInfo) -> None:
        """Create the heads for ``feature_info`` (override; called by :meth:`setup`)."""

    def prepare(self, data: ImageData | None, context: RunContext) -> None:
        """Get ready on the run's data before the strategy runs (called once by :func:`nas_core.search`, before
        :meth:`setup`). The default does nothing; ``distill`` pre-trains its teacher here."""

    @abc.abstractmethod
    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """A scalar training loss."""

    @abc.abstractmethod
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        """A repeatable label-free quality estimate; higher is better."""

    def pretext_targets(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(inputs, class indices) of a classification pretext task, when the objective has one.

        Proxies that need classes (jacov, epe_nas) use these when no labels are given.
        """
        return None

    @property
    def num_pretext_classes(self) -> int | None:
        return None


def _guard(fn: Callable[..., Any], meth: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: Objective, backbone: nn.Module, images: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self._feature_info is None:
            name = self.registered_name or type(self).__name__
            raise NasError(
                f"objective '{name}' is not set up: call objective.setup(backbone.feature_info, in_chans=..., "
                f"img_size=...) before {meth}()"
            )
        if meth == "loss" and self.requires_labels:
            targets = args[0] if args else kwargs.get("targets")
            if targets is None:
                name = self.registered_name or type(self).__name__
                raise NasError(
                    f"objective '{name}' needs labels (targets) but got none; it is a supervised baseline. Pass "
                    f"labelled data (labels=True) or choose a label-free objective"
                )
        return fn(self, backbone, images, *args, **kwargs)

    wrapper._nas_guarded = True  # type: ignore[attr-defined]
    return wrapper


class Proxy(abc.ABC):
    """Base class of zero-cost proxies: ``score(net, images, targets=None, loss_fn=None) -> float``.

    ``net`` is a standalone network from ``space.build(arch, num_classes=...)``. A proxy that needs a
    loss uses cross-entropy with ``targets`` when given, else ``loss_fn`` (label-free, from the
    objective). It never leaves the network modified.
    """

    higher_is_better: ClassVar[bool] = True
    needs_targets: ClassVar[bool] = False
    needs_loss: ClassVar[bool] = False
    data_free: ClassVar[bool] = False
    registered_name: str = ""
    #: the objective a loss-based proxy differentiates when neither targets nor ``loss_fn`` are given
    #: (set by :func:`nas_core.search` when a run names both a proxy and an objective)
    objective: Objective | None = None

    @abc.abstractmethod
    def score(
        self,
        net: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        loss_fn: LossFn | None = None,
    ) -> float:
        """Score one network."""

    @classmethod
    def score_together(
        cls,
        proxies: Sequence[Proxy],
        net: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        loss_fn: LossFn | None = None,
    ) -> list[float]:
        """Scores of several proxies of this family on one network, in order (NaN where one is undefined).

        Strategies call it with every proxy whose class shares this implementation, so a family can share its
        forward and backward passes (nas-proxies does). The default scores them one by one.
        """
        out = []
        for p in proxies:
            try:
                out.append(float(p.score(net, images, targets, loss_fn=loss_fn)))
            except NonFiniteError:
                out.append(math.nan)
        return out


class Strategy(abc.ABC):
    """Base class of search strategies.

    ``needs`` maps each evaluator kind the strategy accepts (``"objective"``, ``"proxy"``,
    ``"table"``) to the capabilities it then requires of the space (``"differentiable"``,
    ``"single_path"``, ``"enumerable"``). :func:`check_compatible` reads it before any compute.
    """

    needs: ClassVar[Mapping[str, frozenset[str]]] = {}
    #: whether ``run()`` honours ``context.compile`` (runs its training forward through ``torch.compile``)
    supports_compile: ClassVar[bool] = False
    registered_name: str = ""

    def requirements(self, evaluator_kind: str) -> frozenset[str]:
        return frozenset(self.needs.get(evaluator_kind, frozenset()))

    def config(self) -> dict[str, Any]:
        """Options that rebuild this strategy (saved with results)."""
        return {}

    def progress_plan(self) -> dict[str, int]:
        """How many epochs or generations each phase of :meth:`run` reports through ``context.log_epoch``
        (``{phase: count}``, keyed by the records' ``"phase"`` metric, ``""`` for records without one), for the
        ETA of progress lines. The default reads ``epochs`` (or ``train_epochs``) and ``generations`` from
        :meth:`config`; override it when the strategy knows better."""
        cfg = self.config()
        plan: dict[str, int] = {}
        epochs = cfg.get("epochs", cfg.get("train_epochs"))
        if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
            plan[""] = plan["train"] = epochs
        generations = cfg.get("generations")
        if isinstance(generations, int) and not isinstance(generations, bool) and generations > 0:
            plan["search"] = generations
        return plan

    @abc.abstractmethod
    def run(
        self,
        space: SearchSpace,
        evaluator: Objective | Proxy | BenchmarkTable | None,
        data: ImageData | None,
        context: RunContext,
    ) -> SearchResult:
        """Search ``space`` and return the result."""


def evaluator_kind(evaluator: Any) -> str:
    """``"objective"``, ``"proxy"``, ``"table"`` or ``"none"``."""
    if evaluator is None:
        return "none"
    if isinstance(evaluator, Objective):
        return "objective"
    if isinstance(evaluator, Proxy):
        return "proxy"
    if isinstance(evaluator, BenchmarkTable):
        return "table"
    raise TypeError(
        f"an evaluator is an Objective, a Proxy or a BenchmarkTable, got {type(evaluator).__name__}"
    )


def component_name(obj: Any) -> str:
    """The registered name of a space, strategy, objective or proxy (else its class name)."""
    return getattr(obj, "registered_name", "") or type(obj).__name__


@dataclass(frozen=True)
class Incompatibility:
    """Why a strategy cannot run on a space with an evaluator (see :func:`find_incompatibility`).

    ``reason``: ``"evaluator"`` (the strategy does not accept this kind of evaluator), ``"capabilities"`` (the
    space's supernet lacks ``missing``) or ``"labels"`` (a supervised objective in a label-free search).
    """

    reason: str
    message: str
    evaluator_kind: str
    missing: frozenset[str] = frozenset()


def find_incompatibility(strategy: Strategy, space: SearchSpace, evaluator: Any = None, *,
                         has_labels: bool | None = None) -> Incompatibility | None:
    """What stops the combination from running, read from the declared needs and capabilities (no compute)."""
    kind = evaluator_kind(evaluator)
    sname, spname = component_name(strategy), component_name(space)
    if strategy.needs and kind not in strategy.needs:
        accepted = " or ".join(_a(k) for k in sorted(strategy.needs) if k != "none")
        if "none" in strategy.needs:
            accepted += " (or nothing)"
        return Incompatibility("evaluator", (
            f"strategy '{sname}' needs {accepted} to rank architectures, but got "
            f"{'nothing' if kind == 'none' else _a(kind)}."
        ), kind)
    missing = frozenset(strategy.requirements(kind) - set(space.capabilities))
    if missing:
        return Incompatibility("capabilities", (
            f"strategy '{sname}' with {'an' if kind[0] in 'aeio' else 'a'} {kind} needs a space whose supernet is "
            f"{' and '.join(sorted(missing))}, but space '{spname}' offers "
            f"{', '.join(sorted(space.capabilities)) or 'no supernet capability'}."
        ), kind, missing)
    if isinstance(evaluator, Objective) and evaluator.requires_labels and has_labels is False:
        return Incompatibility("labels", (
            f"objective '{component_name(evaluator)}' needs labels, but this search is label-free (the data has no "
            f"labels)."
        ), kind)
    return None


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeio" else f"a {kind}"
