"""Result assembly: a SearchResult with candidates ranked by fitness."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from nas_core import Architecture, Candidate, ConfigError, SearchResult, SearchSpace

from ._helpers import space_name

__all__ = ["make_result"]


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
