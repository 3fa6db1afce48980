"""Candidate pools: the architectures a search may visit (the whole space, or a table's rows)."""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from nas_core import Architecture, ConfigError, SearchSpace

from ._helpers import accepted_kwargs, space_name

__all__ = ["CandidatePool", "MUTATION_HINT_ALIASES"]


#: other keyword names a space's mutate() may use for the evolution's mutation hints
MUTATION_HINT_ALIASES: dict[str, tuple[str, ...]] = {
    "mutation_prob": ("block_prob", "block_mutation_prob", "p_m"),
    "depth_mutation_prob": ("depth_prob", "p_d"),
}


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
