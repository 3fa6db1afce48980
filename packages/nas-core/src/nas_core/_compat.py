"""``check_compatible``: refuse an impossible strategy/space/evaluator combination before any compute, naming the
registered alternatives that would work (read from the plugin manager's registries)."""

from __future__ import annotations

from typing import Any, Iterable

from ._arch import SearchSpace
from ._contracts import Incompatibility, Strategy, component_name, find_incompatibility
from ._errors import IncompatibleError
from ._plugins import NasPluginManager, get_plugin_manager
from ._registry import Registry

__all__ = ["check_compatible"]


def check_compatible(
    strategy: Strategy,
    space: SearchSpace,
    evaluator: Any = None,
    *,
    has_labels: bool | None = None,
    plugin_manager: NasPluginManager | None = None,
) -> None:
    """Raise :class:`IncompatibleError` (before any compute) when the combination cannot run.

    The message names what is missing and the registered alternatives that would work, from
    ``plugin_manager``'s registries (default: the shared manager).
    """
    problem = find_incompatibility(strategy, space, evaluator, has_labels=has_labels)
    if problem is None:
        return
    pm = plugin_manager if plugin_manager is not None else get_plugin_manager()
    raise IncompatibleError(problem.message + _alternatives(problem, strategy, space, pm.registry))


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeio' else 'a'} {kind}"


def _strategies_for(kind: str, capabilities: Iterable[str], strategies: Registry) -> list[str]:
    """Registered strategies that accept ``kind`` on a space with ``capabilities``."""
    caps = set(capabilities)
    return [e.name for e in strategies if kind in (e.metadata.get("needs") or {})
            and set(e.metadata["needs"][kind]) <= caps]


def _alternatives(problem: Incompatibility, strategy: Strategy, space: SearchSpace, registry: Any) -> str:
    kind = problem.evaluator_kind
    if problem.reason == "labels":
        names = [e.name for e in registry("objective") if not e.metadata.get("requires_labels", False)]
        listing = ", ".join(names or ["install nas-objectives for mim, rotation, colorization, jigsaw, distill"])
        return (f" Choose a label-free objective ({listing}) or, for the supervised baseline, ask for labels "
                f"(labels=True, nas search --labels).")
    good = _strategies_for(kind, space.capabilities, registry("strategy"))
    if problem.reason == "evaluator":
        return f" Strategies that accept {_a(kind)} on '{component_name(space)}': {', '.join(good)}." if good else ""
    need = strategy.requirements(kind)
    spaces = [e.name for e in registry("space") if need <= set(e.metadata.get("capabilities") or ())]
    out = ""
    if good:
        out += f" Strategies that work on '{component_name(space)}' with {_a(kind)}: {', '.join(good)}."
    if spaces:
        out += f" Spaces that work with '{component_name(strategy)}': {', '.join(spaces)}."
    return out or " No installed strategy or space fits; see `nas plugins`."
