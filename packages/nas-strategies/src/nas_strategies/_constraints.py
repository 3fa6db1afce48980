"""Hard cost constraints on the architectures a search accepts."""

from __future__ import annotations

import numpy as np

from nas_core import Architecture, ConfigError, SearchSpace

from ._pool import CandidatePool

__all__ = ["Constraints"]


class Constraints:
    """Hard limits on ``space.cost(arch)``: ``max_params`` and ``max_flops`` (absolute counts). ``sound=True``
    also rejects architectures with a structural defect (``space.defect``: no path from input to output)."""

    def __init__(self, space: SearchSpace, max_params: float | None = None, max_flops: float | None = None,
                 *, sound: bool = False):
        for name, v in (("max_params", max_params), ("max_flops", max_flops)):
            if v is not None and not v > 0:
                raise ConfigError(f"{name}: must be positive, got {v}")
        self.space = space
        self.max_params = max_params
        self.max_flops = max_flops
        self.sound = bool(sound)
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
        if self.sound and self.space.defect(arch) is not None:
            return False
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
        if self.sound:
            parts.append("no structural defect")
        return ", ".join(parts) or "no constraints"

    def sample(self, pool: CandidatePool, rng: np.random.Generator, *, exclude: set[str] | None = None, tries: int = 2000) -> Architecture | None:
        """A feasible architecture not in ``exclude`` (``None`` when ``tries`` draws found none)."""
        for _ in range(tries):
            a = pool.sample(rng)
            if (exclude is None or str(a) not in exclude) and self.ok(a):
                return a
        return None
