"""Architecture values and the search-space contract (torch-free at import)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import numpy as np

from ._errors import ArchitectureError, NasError

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

__all__ = [
    "Architecture",
    "Cost",
    "SearchSpace",
    "CAPABILITIES",
    "make_rng",
]

#: Capabilities a space's supernet (or the space itself) can declare.
CAPABILITIES: frozenset[str] = frozenset({"differentiable", "single_path", "enumerable", "patch_mask"})


def make_rng(seed: int | np.random.Generator | None = None) -> np.random.Generator:
    """A numpy Generator from a seed (or pass a Generator through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class Architecture(abc.ABC):
    """An immutable, hashable architecture value with a stable string form.

    Subclasses are frozen dataclasses (or equivalent) and implement ``__str__`` and
    :meth:`parse` so that ``type(a).parse(str(a)) == a``. ``space`` names the space family that
    understands it (``"nb201"``, ``"darts"``, ``"vit"``).
    """

    space: ClassVar[str] = ""

    @abc.abstractmethod
    def __str__(self) -> str:
        """The canonical string form (NB201's ``|op~0|+...``, a DARTS ``Genotype(...)``, ...)."""

    @classmethod
    @abc.abstractmethod
    def parse(cls, text: str) -> Architecture:
        """Parse the string form; raise :class:`nas_core.ArchitectureError` pointing at the bad part."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form: ``{"space": ..., "arch": str(self)}``."""
        return {"space": self.space, "arch": str(self)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return type(self) is type(other) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, str(self)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


@dataclass(frozen=True)
class Cost:
    """What an architecture costs.

    ``params``: trainable parameters of the standalone network (classifier included when the
    space builds one); ``flops``: multiply-accumulate operations of one forward pass of one image at
    the space's input size (the convention NAS papers call "FLOPs"); each space documents exactly
    which layers it counts.
    """

    params: int
    flops: int

    def to_dict(self) -> dict[str, int]:
        return {"params": int(self.params), "flops": int(self.flops)}

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def flops_m(self) -> float:
        return self.flops / 1e6


class SearchSpace(abc.ABC):
    """The search-space contract.

    A space is a *description*: it samples, mutates, crosses over, encodes and decodes
    :class:`Architecture` values (never mutating them), builds standalone networks and a
    supernet, and prices architectures. ``capabilities`` declares what its supernet offers
    (``"differentiable"``, ``"single_path"``, ``"patch_mask"``) and whether it can be enumerated
    (``"enumerable"``), so strategies can be checked against it before anything is built.
    """

    #: registry name of the family (set by subclasses)
    name: ClassVar[str] = ""
    #: see :data:`CAPABILITIES`
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: set by the registry to the name the space was created under
    registered_name: str = ""

    # -- values ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def parse(self, text: str) -> Architecture:
        """Parse an architecture string of this space (errors point at the bad part)."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random architecture."""

    @abc.abstractmethod
    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A new architecture one mutation away from ``arch`` (never equal to it when avoidable)."""

    @abc.abstractmethod
    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        """A new architecture mixing the choices of ``a`` and ``b``."""

    @abc.abstractmethod
    def encode(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        """(adjacency ``[N, N]`` upper-triangular 0/1, one-hot operations ``[N, K]``) for graph embeddings."""

    @abc.abstractmethod
    def decode(self, adjacency: np.ndarray, ops: np.ndarray) -> Architecture | None:
        """The inverse of :meth:`encode`; ``None`` when the graph is not a valid architecture."""

    # -- networks -------------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        """A standalone network for ``arch``.

        With ``num_classes`` its ``forward`` returns logits; without, it returns the multi-scale
        feature list. Either way it has ``feature_info`` and ``forward_features(x) -> list``.
        """

    @abc.abstractmethod
    def supernet(self, **cfg: Any) -> nn.Module:
        """The weight-sharing supernet (a :class:`nas_core.Supernet`)."""

    @abc.abstractmethod
    def cost(self, arch: Architecture) -> Cost:
        """Parameters and FLOPs of the standalone network."""

    # -- optional -------------------------------------------------------------------------------
    def enumerate(self) -> Iterator[Architecture]:
        """Every architecture of the space (only when ``"enumerable"`` is a capability)."""
        raise NasError(
            f"space '{self.registered_name or self.name}' cannot be enumerated (it is not finite or too large); "
            f"use sample() instead, or a strategy that does not enumerate"
        )

    def graph(self, arch: Architecture) -> dict[str, list[tuple[str, str, str]]]:
        """Edges ``(source, target, label)`` of each cell, for drawing (``nas show``).

        The default derives one graph from :meth:`encode` (operations as node labels ``op<k>``); spaces override
        it with named operations and one entry per cell type (``{"normal": [...], "reduce": [...]}``).
        """
        adj, ops = self.encode(arch)
        names = [f"{i}:op{int(k)}" for i, k in enumerate(np.asarray(ops).argmax(-1))]
        n = len(names)
        return {"graph": [(names[i], names[j], "") for i in range(n) for j in range(n) if adj[i, j] > 0.5]}

    def edge_names(self) -> dict[str, list[str]]:
        """What each row of the supernet's ``arch_weights()`` is, per cell type (``"node 2 <- node 0"``), for the
        architecture-weight picture; the default is empty (rows are named ``edge 0``, ``edge 1``, ...)."""
        return {}

    def config(self) -> dict[str, Any]:
        """Options that rebuild this space with ``create_space(name, **config)`` (saved in results)."""
        return {}

    def defect(self, arch: Architecture) -> str | None:
        """Why ``arch`` cannot work as a network, or ``None``: e.g. an NB201 cell with no path from its input to
        its output computes a constant. Strategies never return such an architecture without saying so, and
        proxy-driven searches give it the worst fitness. The default finds no defect."""
        return None

    def validate(self, arch: Architecture | str) -> Architecture:
        """Parse a string, or check that an architecture belongs to this space."""
        if isinstance(arch, str):
            return self.parse(arch)
        if not isinstance(arch, Architecture):
            raise ArchitectureError(
                f"expected an Architecture of space '{self.name}' or its string form, got {type(arch).__name__}"
            )
        return self.parse(str(arch))

    def distance(self, a: Architecture, b: Architecture) -> float:
        """Distance between two architectures (default: Hamming distance of their encodings)."""
        adj_a, ops_a = self.encode(a)
        adj_b, ops_b = self.encode(b)
        if adj_a.shape != adj_b.shape or ops_a.shape != ops_b.shape:
            return float("inf")
        return float(np.abs(adj_a - adj_b).sum() + np.abs(ops_a - ops_b).sum() / 2)

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({cfg})"
