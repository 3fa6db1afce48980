"""Hook specifications of the ``nas`` plugin system.

A plugin is a module (or object) with functions decorated by :data:`nas_core.hookimpl` whose names
are the hooks below. It is found through the entry-point group ``nas``::

    [project.entry-points.nas]
    thing = "nas_thing.plugin"

or registered from Python with :func:`nas_core.register_plugin`. Hooks are always called with
keyword arguments, so an implementation may accept *fewer* arguments than its specification
(pluggy's opt-in arguments): specifications may gain arguments in later versions, but never
rename or drop one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ._markers import hookspec

if TYPE_CHECKING:  # pragma: no cover
    from ._context import RunContext
    from ._contracts import Architecture, SearchResult
    from ._registry import Registry

__all__ = [
    "nas_register_spaces",
    "nas_register_objectives",
    "nas_register_strategies",
    "nas_register_proxies",
    "nas_register_commands",
    "nas_run_start",
    "nas_step_end",
    "nas_epoch_end",
    "nas_candidate_evaluated",
    "nas_run_end",
    "nas_run_failed",
]

# ---------------------------------------------------------------------------------------------
# registration hooks
# ---------------------------------------------------------------------------------------------


@hookspec
def nas_register_spaces(registry: Registry) -> None:
    """Register search spaces.

    Called when the plugin manager builds its registry (lazily, on the first lookup).

    :param registry: the space registry; call ``registry.add(name, factory, aliases=..., summary=...,
        capabilities=...)``. ``factory`` is a class, a callable or a lazy ``"module:attr"`` string,
        so listing plugins never imports torch-heavy code.

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_register_objectives(registry: Registry) -> None:
    """Register self-supervised (or supervised baseline) objectives.

    Called when the plugin manager builds its registry (lazily, on the first lookup).

    :param registry: the objective registry; see :meth:`nas_core.Registry.add`.

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_register_strategies(registry: Registry) -> None:
    """Register search strategies.

    Called when the plugin manager builds its registry (lazily, on the first lookup).

    :param registry: the strategy registry; pass ``requires=`` (e.g. ``{"differentiable"}``) so
        incompatible combinations are refused before the strategy is even imported.

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_register_proxies(registry: Registry) -> None:
    """Register zero-cost proxies.

    Called when the plugin manager builds its registry (lazily, on the first lookup).

    :param registry: the proxy registry; pass metadata such as ``higher_is_better``,
        ``needs_targets`` and ``data_free``.

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_register_commands(registry: Registry) -> None:
    """Register subcommands of the ``nas`` command line.

    Called when the ``nas`` command builds its parser.

    :param registry: the command registry; ``registry.add("proxies", "nas_proxies.cli:command",
        summary="...")`` where the target has ``add_arguments(parser)`` and ``run(args) -> int``.
        The target is imported only when its subcommand runs, so ``nas --help`` stays fast.

    .. versionadded:: 0.1.0
    """


# ---------------------------------------------------------------------------------------------
# run lifecycle hooks (observers: tracking, logging, early stopping integrations)
# ---------------------------------------------------------------------------------------------


@hookspec
def nas_run_start(context: RunContext) -> None:
    """Observe the start of a search or training run.

    Called when a strategy starts (or resumes) running, after the context is set up and before any
    compute. On a resumed run it is called again.

    :param context: the run context (device, seed, run directory, config, distributed state).

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_step_end(context: RunContext, step: int, metrics: Mapping[str, float]) -> None:
    """Observe the end of an optimisation step.

    Called when a strategy finishes a training step and reports its metrics (on every rank; check
    ``context.is_main`` to write only once).

    :param context: the run context.
    :param step: the global step number, starting at 0.
    :param metrics: scalar metrics of this step (e.g. ``{"loss": 0.31, "lr": 0.02}``).

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_epoch_end(context: RunContext, epoch: int, metrics: Mapping[str, float]) -> None:
    """Observe the end of an epoch (or of a generation for population-based strategies).

    Called when a strategy finishes an epoch or generation and reports its metrics.

    :param context: the run context.
    :param epoch: the epoch or generation number, starting at 0.
    :param metrics: scalar metrics of this epoch.

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_candidate_evaluated(context: RunContext, arch: Architecture, scores: Mapping[str, float]) -> None:
    """Observe the evaluation of one candidate architecture.

    Called when a strategy has scored a candidate (fitness, proxy scores, table lookups).

    :param context: the run context.
    :param arch: the candidate.
    :param scores: its scores by name.

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_run_end(context: RunContext, result: SearchResult | Any) -> None:
    """Observe the successful end of a run.

    Called when a strategy returns its result (a :class:`nas_core.SearchResult` for searches, a
    dict of metrics for training runs).

    :param context: the run context.
    :param result: the result of the run.

    .. versionadded:: 0.1.0
    """


@hookspec
def nas_run_failed(context: RunContext, error: BaseException) -> None:
    """Observe a run that stops with an error (non-finite loss, interruption, bug).

    Called when a run stops with an exception, before it propagates, so trackers can flush and
    close.

    :param context: the run context.
    :param error: the exception that stops the run.

    .. versionadded:: 0.1.0
    """
