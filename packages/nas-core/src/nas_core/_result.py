"""The result of a search (torch-free): best architecture, ranked candidates, history."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ._arch import Architecture
from ._errors import ConfigError
from ._io import atomic_write_text
from ._json import jsonable

if TYPE_CHECKING:  # pragma: no cover
    from ._arch import SearchSpace

__all__ = ["Candidate", "SearchResult"]


@dataclass(frozen=True)
class Candidate:
    """One evaluated architecture and its scores (``fitness`` is what the strategy ranked by)."""

    arch: Architecture
    scores: Mapping[str, float] = field(default_factory=dict)

    @property
    def fitness(self) -> float:
        return float(self.scores.get("fitness", float("nan")))

    def to_json(self) -> dict[str, Any]:
        return {"arch": str(self.arch), "scores": jsonable(dict(self.scores))}


@dataclass
class SearchResult:
    """What every strategy returns.

    :ivar best: the selected architecture.
    :ivar candidates: evaluated candidates, best first (may be just ``[best]`` for DARTS).
    :ivar history: one dict of scalar metrics per epoch/generation (``{"epoch": 0, "loss": ...}``).
    :ivar space: registry name of the space; ``space_config`` the options it was created with.
    :ivar strategy / objective / proxy: names of what produced the result.
    :ivar arch_weights: final architecture weights (DARTS alphas, softmaxed), by cell type.
    :ivar arch_weights_history: the same, one snapshot per epoch (for the alpha-evolution plot).
    :ivar cost: params/FLOPs of the best architecture.
    :ivar seed: the run seed.
    :ivar extra: anything else a strategy wants to keep (JSON-serialisable).
    """

    best: Architecture
    candidates: list[Candidate] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    space: str = ""
    space_config: dict[str, Any] = field(default_factory=dict)
    strategy: str = ""
    objective: str | None = None
    proxy: str | None = None
    arch_weights: dict[str, Any] | None = None
    arch_weights_history: list[dict[str, Any]] | None = None
    cost: dict[str, int] | None = None
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return jsonable(
            {
                "best": str(self.best),
                "space": self.space or self.best.space,
                "space_config": self.space_config,
                "strategy": self.strategy,
                "objective": self.objective,
                "proxy": self.proxy,
                "seed": self.seed,
                "cost": self.cost,
                "candidates": [c.to_json() for c in self.candidates],
                "history": self.history,
                "arch_weights": self.arch_weights,
                "arch_weights_history": self.arch_weights_history,
                "versions": self.versions,
                "extra": self.extra,
            }
        )

    def save(self, path: str | Path) -> Path:
        """Write ``result.json`` atomically."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def from_json(cls, data: Mapping[str, Any], space: SearchSpace | None = None, *, spaces: Any = None,
                  source: str = "result") -> SearchResult:
        """Rebuild a result. ``space`` parses its architectures; without it, ``spaces`` (a space registry such as
        ``nas_core.get_plugin_manager().registry("space")``) builds the result's space from its name and config.
        Malformed data raises :class:`nas_core.ConfigError` naming ``source``."""
        from ._errors import NasError

        if not isinstance(data, Mapping) or not all(isinstance(data.get(k), str) for k in ("best", "space")):
            raise ConfigError(f"{source}: a search result needs the strings 'best' and 'space'")
        if space is None:
            if spaces is None:
                raise ConfigError(
                    f"SearchResult.from_json needs the space of the result ('{data.get('space')}'): pass space=..., "
                    f"or spaces=nas_core.get_plugin_manager().registry('space') to build it by name"
                )
            space = spaces.create(str(data["space"]), **dict(data.get("space_config") or {}))
        try:
            return cls(
                best=space.parse(str(data["best"])),
                candidates=[Candidate(space.parse(str(c["arch"])), dict(c.get("scores", {}))) for c in data.get("candidates", [])],
                history=list(data.get("history") or []),
                space=str(data.get("space", "")),
                space_config=dict(data.get("space_config") or {}),
                strategy=str(data.get("strategy", "")),
                objective=data.get("objective"),
                proxy=data.get("proxy"),
                arch_weights=data.get("arch_weights"),
                arch_weights_history=data.get("arch_weights_history"),
                cost=data.get("cost"),
                seed=data.get("seed"),
                versions=dict(data.get("versions") or {}),
                extra=dict(data.get("extra") or {}),
            )
        except NasError:
            raise  # e.g. an ArchitectureError: it names the bad part already
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(f"{source} is malformed ({type(exc).__name__}: {exc}); the file is damaged or not a nas result") from exc

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace | None = None, *, spaces: Any = None) -> SearchResult:
        """Read ``result.json`` (or a run directory's); ``space`` and ``spaces`` as in :meth:`from_json`."""
        path = Path(path)
        if path.is_dir():
            path = path / "result.json"
        from ._io import read_json

        return cls.from_json(read_json(path, what="search result"), space, spaces=spaces, source=str(path))
