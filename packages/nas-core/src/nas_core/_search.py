"""``nas_core.search``: compose a space, an objective (or proxy, or table), a strategy and data in one call."""

from __future__ import annotations

import dataclasses
import importlib.metadata as importlib_metadata
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal, Mapping, Sequence

from .__about__ import __version__
from ._arch import SearchSpace
from ._compat import check_compatible
from ._context import RunContext
from ._contracts import Objective, Proxy, Strategy
from ._data import load_data
from ._errors import ConfigError
from ._options import Range, check_options
from ._plots import draw_run
from ._plugins import NasPluginManager, get_plugin_manager
from ._registry import keyword_names
from ._resolved import resolved_sections
from ._rundir import check_run_dir, run_dir_path
from ._table import BenchmarkTable
from .tracking import create_tracker

__all__ = ["search", "resolve_config", "check_config", "COMPONENTS", "RUN_KEYS"]

COMPONENTS = ("space", "objective", "strategy", "proxy")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The run-level options (``[run]`` of a config file; everything else is routed to a component). Their types
    and ranges are checked before any compute, like a component's options."""

    data: Any = "digits"
    img_size: Annotated[int, Range(ge=8)] = 32
    limit: Annotated[int, Range(ge=1)] | None = None
    labels: bool = False
    skip_corrupt: bool = False
    seed: Annotated[int, Range(ge=0, lt=2**63)] = 0
    device: Any = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    run_dir: str | Path | None = None
    resume: bool = False
    progress: bool | Literal["lines"] | None = None
    deterministic: bool = True
    table: Any = None
    trackers: str | Sequence[str] = ()
    channels_last: bool = False
    compile: bool = False
    pictures: bool = True
    download: bool = False
    threads: Any = "auto"


#: run-level options (everything else is routed to a component)
RUN_KEYS = tuple(f.name for f in dataclasses.fields(RunOptions))
RUN_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(RunOptions)}


def _accepted(pm: NasPluginManager, kind: str, name: str) -> set[str]:
    """Option names the factory of ``name`` names in its signature (none listed when it takes ``**kwargs``)."""
    return set(keyword_names(pm.registry(kind).get(name).load()) or ())


def _manager(plugin_manager: NasPluginManager | None) -> NasPluginManager:
    return plugin_manager if plugin_manager is not None else get_plugin_manager()


#: flat options with one meaning under another name in some components: ``epochs`` counts the passes over the
#: data that train the search network (DARTS' epochs; the supernet training of one-shot strategies, ``train_epochs``)
FLAT_SYNONYMS: dict[str, tuple[str, ...]] = {"epochs": ("train_epochs",)}


def _takers(pm: NasPluginManager, cfg: Mapping[str, Any], key: str) -> list[str]:
    """The components of ``cfg`` (named, not instances) whose factory accepts option ``key``."""
    takers = []
    for comp in COMPONENTS:
        c = cfg.get(comp)
        if c is not None and "_instance" not in c and key in _accepted(pm, comp, c["name"]):
            takers.append(comp)
    return takers


def resolve_config(
    space: Any = None,
    objective: Any = None,
    strategy: Any = None,
    proxy: Any = None,
    *,
    space_options: Mapping[str, Any] | None = None,
    objective_options: Mapping[str, Any] | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    proxy_options: Mapping[str, Any] | None = None,
    plugin_manager: NasPluginManager | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The resolved run configuration: ``{"run": {...}, "space": {"name": ..., ...}, ...}``.

    Flat ``options`` are routed to the one component whose factory accepts them; an option several
    components accept must be given through ``<component>_options``. Names are looked up in
    ``plugin_manager``'s registries (default: the shared manager).
    """
    pm = _manager(plugin_manager)
    cfg: dict[str, Any] = {"run": dict(RUN_DEFAULTS)}
    given = {"space": space, "objective": objective, "strategy": strategy, "proxy": proxy}
    explicit = {
        "space": dict(space_options or {}),
        "objective": dict(objective_options or {}),
        "strategy": dict(strategy_options or {}),
        "proxy": dict(proxy_options or {}),
    }
    for comp, value in given.items():
        if value is None:
            continue
        if isinstance(value, str):
            cfg[comp] = {"name": value, **explicit[comp]}
        else:
            cfg[comp] = {"name": getattr(value, "registered_name", "") or type(value).__name__, "_instance": value}
            if explicit[comp]:
                raise ConfigError(f"{comp}_options were given with a ready {comp} instance; configure the instance instead")
    for key, value in options.items():
        if key in RUN_KEYS:
            cfg["run"][key] = value
            continue
        takers = _takers(pm, cfg, key)
        synonym = next((alt for alt in FLAT_SYNONYMS.get(key, ()) if not takers and len(_takers(pm, cfg, alt)) == 1), None)
        if synonym is not None:
            cfg[_takers(pm, cfg, synonym)[0]][synonym] = value
            continue
        if not takers:
            valid = {comp: sorted(_accepted(pm, comp, cfg[comp]["name"])) for comp in COMPONENTS if comp in cfg and "_instance" not in cfg[comp]}
            listing = "; ".join(f"{comp} '{cfg[comp]['name']}': {', '.join(v) or 'none'}" for comp, v in valid.items())
            raise ConfigError(
                f"option '{key}' is not accepted by any component of this run ({listing}; run options: "
                f"{', '.join(RUN_KEYS)})"
            )
        if len(takers) > 1:
            raise ConfigError(
                f"option '{key}' is accepted by {' and '.join(takers)}; say which with "
                + " or ".join(f"{t}_options={{'{key}': ...}}" for t in takers)
            )
        cfg[takers[0]][key] = value
    return cfg


def _versions(pm: NasPluginManager, cfg: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    try:
        out["nas-core"] = importlib_metadata.version("nas-core")
    except importlib_metadata.PackageNotFoundError:
        out["nas-core"] = __version__
    for comp in COMPONENTS:
        c = cfg.get(comp)
        if not c or "_instance" in c:
            continue
        origin = pm.registry(comp).get(c["name"]).origin
        if origin.dist:
            out[origin.dist] = origin.version or "?"
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _public(cfg: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, Mapping):
            out[k] = {kk: vv for kk, vv in v.items() if kk != "_instance"}
        else:
            out[k] = v
    run = out.get("run", {})
    if not isinstance(run.get("data"), (str, type(None), Path)):
        run["data"] = f"<{type(run['data']).__name__}>"
    if isinstance(run.get("table"), (str, Path)):
        run["table"] = str(run["table"])
    elif run.get("table") is not None:
        run["table"] = f"<{type(run['table']).__name__}>"
    run["trackers"] = list(run.get("trackers") or [])
    return json.loads(json.dumps(out, default=str))


def _build(pm: NasPluginManager, comp: str, c: Mapping[str, Any] | None) -> Any:
    if not c:
        return None
    if "_instance" in c:
        return c["_instance"]
    return pm.registry(comp).create(c["name"], **{k: v for k, v in c.items() if k != "name"})


def search(
    space: Any = "nb201",
    objective: Any = None,
    strategy: Any = "darts",
    proxy: Any = None,
    data: Any = "digits",
    *,
    config: Mapping[str, Any] | None = None,
    context: Any = None,
    plugin_manager: NasPluginManager | None = None,
    **options: Any,
) -> Any:
    """Run a search and return its :class:`nas_core.SearchResult`.

    ``space``, ``objective``, ``strategy`` and ``proxy`` are registered names or ready instances. Flat options are
    routed to the component that accepts them (``epochs=`` to the strategy, ``channels=`` to the space, ...);
    run options are ``seed``, ``device``, ``precision``, ``run_dir``, ``resume``, ``img_size``, ``limit``,
    ``table`` (a benchmark file used as fitness and for the proxy-vs-accuracy picture), ``trackers``
    (e.g. ``["tensorboard"]``), ``threads`` (CPU threads of torch: ``"auto"``, the default, or a number) and
    ``progress`` (``None``: bars on a terminal, one line per epoch otherwise; ``True`` bars, ``"lines"``,
    ``False`` silent). With ``run_dir`` the directory receives the config, history, checkpoint,
    ``result.json`` and pictures. ``config`` is an already resolved configuration (see :func:`resolve_config`).
    Names are built from ``plugin_manager``'s registries and its hooks observe the run (default: the shared
    manager; a given ``context`` brings its own).

    Example::

        import nas_core
        result = nas_core.search(space="nb201", objective="mim", strategy="darts", epochs=2, channels=8)
        print(result.best)
    """
    if context is not None and plugin_manager is None:
        plugin_manager = context.plugin_manager
    pm = _manager(plugin_manager)
    if config is None:
        if objective is None and proxy is None and options.get("table") is None:
            objective = default_objective(strategy, pm)
        cfg = resolve_config(space, objective, strategy, proxy, data=data, plugin_manager=pm, **options)
    else:
        cfg = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in config.items()}
        cfg["run"] = {**RUN_DEFAULTS, **cfg.get("run", {})}
    ready = prepare(cfg, plugin_manager=pm)
    run = cfg["run"]
    own = context is None
    if context is None:
        # config.json records every component's options, defaults included: it alone reproduces the run
        public = resolved_sections(_public(cfg), {c: cfg[c] for c in COMPONENTS if cfg.get(c)})
        context = _context(run, public, pm)
        context._hold_lock = True  # held until the pictures are drawn, below
    for phase, total in (getattr(ready.strategy, "progress_plan", dict)() or {}).items():
        context.expect_epochs(total, phase)
    try:
        context.versions = _versions(pm, cfg)
        _prepare_objective(ready.evaluator, ready.data, context)
        result = _run_with_trackers(ready.strategy, ready.space, ready.evaluator, ready.data, context,
                                    run.get("trackers") or ())
        _finish(result, context, run, ready.space, ready.table)
    finally:
        if own:
            context.close()
    return result


def _context(run: Mapping[str, Any], public: dict[str, Any], pm: NasPluginManager) -> RunContext:
    return RunContext(
        device=run.get("device", "auto"),
        precision=run.get("precision", "fp32"),
        seed=int(run.get("seed", 0)),
        run_dir=run.get("run_dir"),
        resume=bool(run.get("resume")),
        progress=run.get("progress"),
        deterministic=bool(run.get("deterministic", True)),
        config=public,
        plugin_manager=pm,
        channels_last=bool(run.get("channels_last")),
        compile=bool(run.get("compile")),
        threads=run.get("threads", "auto"),
    )


def _prepare_objective(evaluator: Any, data_obj: Any, context: Any) -> None:
    """Let the run's objective (the evaluator, or the objective a proxy takes its loss from) see the data first."""
    objective = evaluator if isinstance(evaluator, Objective) else getattr(evaluator, "objective", None)
    if isinstance(objective, Objective):
        objective.prepare(data_obj, context)


def _run_with_trackers(strategy_obj: Any, space_obj: Any, evaluator: Any, data_obj: Any, context: Any, trackers: Any) -> Any:
    """Run the strategy with the run's trackers registered as plugins of its manager for the run's length."""
    names = _attach_trackers(trackers, context)
    try:
        return strategy_obj.run(space_obj, evaluator, data_obj, context)
    finally:
        for name in names:
            context.plugin_manager.unregister_plugin(name)


def _finish(result: Any, context: Any, run: Mapping[str, Any], space_obj: Any, table: Any) -> None:
    """The table's accuracy of the best architecture, and the pictures of the run directory."""
    if table is not None and str(result.best) in table:
        result.extra["table_accuracy"] = table.accuracy(result.best)
        if context.run_dir is not None and context.is_main:
            result.save(context.run_dir / "result.json")
    if context.run_dir is not None and context.is_main and run.get("pictures", True):
        draw_run(context.run_dir, result=result, space=space_obj, table=table)


def default_objective(strategy: Any, plugin_manager: NasPluginManager | None = None) -> str | None:
    """``"mim"`` when the strategy ranks with an objective, else ``None`` (a proxy-driven strategy is never handed an
    objective the user did not ask for)."""
    needs = getattr(strategy, "needs", None)
    if isinstance(strategy, str):
        needs = _manager(plugin_manager).registry("strategy").get(strategy).metadata.get("needs")
    return "mim" if not needs or "objective" in needs else None


def check_config(cfg: Mapping[str, Any], plugin_manager: NasPluginManager | None = None) -> None:
    """Check a resolved configuration before any compute: the run options, and every component's options against
    the types and ranges its factory declares (see :mod:`nas_core._options`)."""
    pm = _manager(plugin_manager)
    run = dict(cfg.get("run") or {})
    unknown = sorted(set(run) - set(RUN_KEYS))
    if unknown:
        raise ConfigError(f"unknown run option(s) {', '.join(unknown)} (valid: {', '.join(RUN_KEYS)})")
    check_options("run", RunOptions, run)
    _check_run_values(run)
    contracts = {"space": SearchSpace, "objective": Objective, "strategy": Strategy, "proxy": Proxy}
    for comp in COMPONENTS:
        c = cfg.get(comp)
        if not c:
            continue
        if "_instance" in c:
            if not isinstance(c["_instance"], contracts[comp]):
                raise ConfigError(
                    f"{comp}: expected a registered name or a {contracts[comp].__name__}, got "
                    f"{type(c['_instance']).__name__} {c['_instance']!r:.60}"
                )
            continue
        name = c.get("name")
        if not isinstance(name, str):
            raise ConfigError(f"{comp}: the name must be a string (e.g. {comp} = \"...\"), got {type(name).__name__} {name!r}")
        entry = pm.registry(comp).get(name)
        check_options(f"{comp} '{entry.name}'", entry.load(), {k: v for k, v in c.items() if k != "name"})


def _check_run_values(run: Mapping[str, Any]) -> None:
    from ._rundir import run_dir_path
    from ._runtime import select_device
    from .tracking import TRACKERS

    run_dir_path(run.get("run_dir"))
    device = run.get("device")
    if device not in (None, "auto") and not (isinstance(device, str) and device.strip().lower() == "auto"):
        select_device(device)
    data = run.get("data")
    if isinstance(data, str) and not data.strip():
        raise ConfigError("run: option 'data' is empty; give a folder of images or a dataset name (default: digits)")
    trackers = run.get("trackers") or ()
    for name in [n for n in trackers.split(",") if n] if isinstance(trackers, str) else trackers:
        if not isinstance(name, str) or name.strip().lower() not in TRACKERS:
            raise ConfigError(f"run: unknown tracker {name!r} (available: {', '.join(TRACKERS)})")


def prepare(cfg: dict[str, Any], plugin_manager: NasPluginManager | None = None) -> Any:
    """Everything a search does before compute, for a resolved configuration: check it, build the components,
    check that they combine, check the run directory and open the data. Returns a namespace with ``space``,
    ``strategy``, ``objective``, ``proxy``, ``evaluator``, ``table`` and ``data``. ``nas search --check`` stops
    here."""
    pm = _manager(plugin_manager)
    run = cfg["run"]
    for comp in ("space", "strategy"):
        if not cfg.get(comp):
            raise ConfigError(f"a search needs a {comp}; pass {comp}=... (see `nas plugins --names`)")
    check_config(cfg, pm)

    space_obj = _build(pm, "space", cfg["space"])
    strategy_obj = _build(pm, "strategy", cfg["strategy"])
    objective_obj = _build(pm, "objective", cfg.get("objective"))
    proxy_obj = _build(pm, "proxy", cfg.get("proxy"))
    table = run.get("table")
    if isinstance(table, (str, Path)):
        table = BenchmarkTable.load(table)
    if objective_obj is not None and proxy_obj is not None:
        _check_both(cfg, strategy_obj, proxy_obj, pm)
        # proxy-driven search that stays label-free: loss-based proxies take their loss from the objective
        proxy_obj.objective = objective_obj
        evaluator: Any = proxy_obj
    else:
        evaluator = objective_obj if objective_obj is not None else proxy_obj
    if evaluator is None and table is not None:
        evaluator = table

    # label-free unless the run asks for labels: a supervised baseline must be chosen on purpose (labels=True)
    needs_labels = bool(run.get("labels"))
    check_compatible(strategy_obj, space_obj, evaluator, has_labels=needs_labels, plugin_manager=pm)
    if run.get("compile") and not getattr(strategy_obj, "supports_compile", False):
        raise ConfigError(
            f"compile=True: strategy '{cfg['strategy']['name']}' does not run through torch.compile (an option it "
            f"would ignore); drop compile, or use a strategy whose supports_compile is true"
        )
    img_size = int(run.get("img_size") or 32)
    space_img = getattr(space_obj, "img_size", None)
    if space_img is not None and int(space_img) != img_size:
        raise ConfigError(
            f"space '{cfg['space']['name']}' is built for {space_img}x{space_img} images but img_size={img_size}; "
            f"pass img_size={space_img} or configure the space with img_size={img_size}"
        )
    run_dir = run_dir_path(run.get("run_dir"))
    if run_dir is not None and os.environ.get("RANK", "0") == "0":  # rank 0 owns the directory (see RunContext)
        check_run_dir(run_dir, resume=bool(run.get("resume")))
    data_obj = None
    if run.get("data") is not None and not (evaluator is table and table is not None and run.get("data") == "none"):
        data_obj = load_data(
            run["data"], img_size=img_size, labels=needs_labels, skip_corrupt=bool(run.get("skip_corrupt")),
            download=bool(run.get("download")), limit=run.get("limit"),
        )
    return SimpleNamespace(space=space_obj, strategy=strategy_obj, objective=objective_obj, proxy=proxy_obj,
                           evaluator=evaluator, table=table, data=data_obj)


def _check_both(cfg: Mapping[str, Any], strategy: Any, proxy: Any, pm: NasPluginManager) -> None:
    """An objective and a proxy together: refuse when one of them would be ignored."""
    sname, pname, oname = cfg["strategy"]["name"], cfg["proxy"]["name"], cfg["objective"]["name"]
    needs = getattr(strategy, "needs", None) or {}
    if needs and "proxy" not in needs:
        raise ConfigError(
            f"strategy '{sname}' ranks with an objective and takes no proxy, so proxy '{pname}' would be ignored; drop "
            f"the proxy (--proxy), or choose a strategy that ranks with proxies"
        )
    if not getattr(proxy, "needs_loss", False):
        loss_based = [e.name for e in pm.registry("proxy") if e.metadata.get("needs_loss")]
        raise ConfigError(
            f"proxy '{pname}' does not use a loss, so objective '{oname}' would be ignored; drop the objective "
            f"(--objective), or pair it with a proxy that differentiates its loss"
            + (f" ({', '.join(loss_based)})" if loss_based else "")
        )


def _attach_trackers(names: Any, context: Any) -> list[str]:
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    registered = []
    for n in names:
        tracker = create_tracker(n, context)
        pm = context.plugin_manager
        pname = f"tracker:{n}:{id(tracker):x}"
        pm.register_plugin(tracker, pname)
        registered.append(pname)
    return registered
