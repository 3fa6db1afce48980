"""``nas_core.search``: compose a space, an objective (or proxy, or table), a strategy and data in one call."""

from __future__ import annotations

import importlib.metadata as importlib_metadata
import inspect
import json
from pathlib import Path
from typing import Any, Mapping

from ._errors import ConfigError

__all__ = ["search", "resolve_config", "COMPONENTS", "RUN_KEYS"]

COMPONENTS = ("space", "objective", "strategy", "proxy")
#: run-level options (everything else is routed to a component)
RUN_KEYS = (
    "data",
    "img_size",
    "limit",
    "labels",
    "skip_corrupt",
    "seed",
    "device",
    "precision",
    "run_dir",
    "resume",
    "progress",
    "deterministic",
    "table",
    "trackers",
    "channels_last",
    "compile",
    "pictures",
    "threads",
)
RUN_DEFAULTS: dict[str, Any] = {
    "data": "digits",
    "img_size": 32,
    "limit": None,
    "labels": False,
    "skip_corrupt": False,
    "seed": 0,
    "device": "auto",
    "precision": "fp32",
    "run_dir": None,
    "resume": False,
    "progress": None,
    "deterministic": True,
    "table": None,
    "trackers": (),
    "channels_last": False,
    "compile": False,
    "pictures": True,
    "threads": "auto",
}


def _accepted(kind: str, name: str) -> tuple[set[str], bool]:
    """Option names the factory of ``name`` accepts (and whether it takes **kwargs)."""
    from ._factory import get_entry

    entry = get_entry(kind, name)
    try:
        sig = inspect.signature(entry.load())
    except (TypeError, ValueError):
        return set(), True
    names = {n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"}
    return names, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


#: flat options with one meaning under another name in some components: ``epochs`` counts the passes over the
#: data that train the search network (DARTS' epochs; the supernet training of one-shot strategies, ``train_epochs``)
FLAT_SYNONYMS: dict[str, tuple[str, ...]] = {"epochs": ("train_epochs",)}


def _takers(cfg: Mapping[str, Any], key: str) -> list[str]:
    """The components of ``cfg`` (named, not instances) whose factory accepts option ``key``."""
    takers = []
    for comp in COMPONENTS:
        c = cfg.get(comp)
        if c is not None and "_instance" not in c and key in _accepted(comp, c["name"])[0]:
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
    **options: Any,
) -> dict[str, Any]:
    """The resolved run configuration: ``{"run": {...}, "space": {"name": ..., ...}, ...}``.

    Flat ``options`` are routed to the one component whose factory accepts them; an option several
    components accept must be given through ``<component>_options``.
    """
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
        takers = _takers(cfg, key)
        synonym = next((alt for alt in FLAT_SYNONYMS.get(key, ()) if not takers and len(_takers(cfg, alt)) == 1), None)
        if synonym is not None:
            cfg[_takers(cfg, synonym)[0]][synonym] = value
            continue
        if not takers:
            valid = {comp: sorted(_accepted(comp, cfg[comp]["name"])[0]) for comp in COMPONENTS if comp in cfg and "_instance" not in cfg[comp]}
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


def _versions(cfg: Mapping[str, Any]) -> dict[str, str]:
    from ._factory import get_entry

    out = {}
    try:
        out["nas-core"] = importlib_metadata.version("nas-core")
    except importlib_metadata.PackageNotFoundError:
        from .__about__ import __version__

        out["nas-core"] = __version__
    for comp in COMPONENTS:
        c = cfg.get(comp)
        if not c or "_instance" in c:
            continue
        origin = get_entry(comp, c["name"]).origin
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


def _build(comp: str, c: Mapping[str, Any] | None) -> Any:
    from ._factory import create_objective, create_proxy, create_space, create_strategy

    if not c:
        return None
    if "_instance" in c:
        return c["_instance"]
    factory = {"space": create_space, "objective": create_objective, "strategy": create_strategy, "proxy": create_proxy}[comp]
    return factory(c["name"], **{k: v for k, v in c.items() if k != "name"})


def search(
    space: Any = "nb201",
    objective: Any = None,
    strategy: Any = "darts",
    proxy: Any = None,
    data: Any = "digits",
    *,
    config: Mapping[str, Any] | None = None,
    context: Any = None,
    plugin_manager: Any = None,
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

    Example::

        import nas_core
        result = nas_core.search(space="nb201", objective="mim", strategy="darts", epochs=2, channels=8)
        print(result.best)
    """
    from ._context import RunContext
    from ._contracts import check_compatible
    from ._data import load_data
    from ._resolved import resolved_sections
    from ._table import BenchmarkTable

    if config is None:
        if objective is None and proxy is None and options.get("table") is None:
            objective = "mim"
        cfg = resolve_config(space, objective, strategy, proxy, data=data, **options)
    else:
        cfg = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in config.items()}
        cfg["run"] = {**RUN_DEFAULTS, **cfg.get("run", {})}
    run = cfg["run"]
    for comp in ("space", "strategy"):
        if not cfg.get(comp):
            raise ConfigError(f"a search needs a {comp}; pass {comp}=... (see `nas plugins --names`)")

    space_obj = _build("space", cfg["space"])
    strategy_obj = _build("strategy", cfg["strategy"])
    objective_obj = _build("objective", cfg.get("objective"))
    proxy_obj = _build("proxy", cfg.get("proxy"))
    table = run.get("table")
    if isinstance(table, (str, Path)):
        table = BenchmarkTable.load(table)
    if objective_obj is not None and proxy_obj is not None:
        # proxy-driven search that stays label-free: loss-based proxies take their loss from the objective
        proxy_obj.objective = objective_obj
        evaluator: Any = proxy_obj
    else:
        evaluator = objective_obj if objective_obj is not None else proxy_obj
    if evaluator is None and table is not None:
        evaluator = table

    # label-free unless the run asks for labels: a supervised baseline must be chosen on purpose (labels=True)
    needs_labels = bool(run.get("labels"))
    check_compatible(strategy_obj, space_obj, evaluator, has_labels=needs_labels)
    img_size = int(run.get("img_size") or 32)
    space_img = getattr(space_obj, "img_size", None)
    if space_img is not None and int(space_img) != img_size:
        raise ConfigError(
            f"space '{cfg['space']['name']}' is built for {space_img}x{space_img} images but img_size={img_size}; "
            f"pass img_size={space_img} or configure the space with img_size={img_size}"
        )
    data_obj = None
    if run.get("data") is not None and not (evaluator is table and table is not None and run.get("data") == "none"):
        data_obj = load_data(
            run["data"], img_size=img_size, labels=needs_labels, skip_corrupt=bool(run.get("skip_corrupt")), limit=run.get("limit")
        )

    # config.json records every component's options, defaults included: it alone reproduces the run
    public = resolved_sections(_public(cfg), {c: cfg[c] for c in COMPONENTS if cfg.get(c)})
    if context is None:
        context = RunContext(
            device=run.get("device", "auto"),
            precision=run.get("precision", "fp32"),
            seed=int(run.get("seed", 0)),
            run_dir=run.get("run_dir"),
            resume=bool(run.get("resume")),
            progress=run.get("progress"),
            deterministic=bool(run.get("deterministic", True)),
            config=public,
            plugin_manager=plugin_manager,
            channels_last=bool(run.get("channels_last")),
            compile=bool(run.get("compile")),
            threads=run.get("threads", "auto"),
        )
    context.versions = _versions(cfg)
    for phase, total in (getattr(strategy_obj, "progress_plan", dict)() or {}).items():
        context.expect_epochs(total, phase)
    trackers = _attach_trackers(run.get("trackers") or (), context)
    try:
        result = strategy_obj.run(space_obj, evaluator, data_obj, context)
    finally:
        for name in trackers:
            context.plugin_manager.unregister_plugin(name)
    if table is not None and str(result.best) in table:
        result.extra["table_accuracy"] = table.accuracy(result.best)
        if context.run_dir is not None and context.is_main:
            result.save(context.run_dir / "result.json")
    if context.run_dir is not None and context.is_main and run.get("pictures", True):
        from ._plots import draw_run

        draw_run(context.run_dir, result=result, space=space_obj, table=table)
    return result


def _attach_trackers(names: Any, context: Any) -> list[str]:
    from .tracking import create_tracker

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
