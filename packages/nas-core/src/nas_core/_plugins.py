"""The plugin manager: discovery through the ``nas`` entry-point group, with per-plugin isolation.

Environment switches:

``NAS_DISABLE_PLUGIN_AUTOLOAD=1``
    do not load entry points (only nas-core's built-in plugin and plugins registered from Python).
``NAS_DISABLED_PLUGINS=a,b``
    skip (block) these plugins, by entry-point name or distribution name; ``*`` blocks all.
``NAS_TRACE_PLUGINS=1``
    print every hook call, its arguments, implementations and result to stderr.

Registration hooks go through pluggy like every other hook (``pm.hook.nas_register_spaces(registry=...)``, as
tox 4 hands its registry to plugins), so hook wrappers, ``tryfirst``/``trylast`` and tracing apply to them. Each
plugin's implementation is called in its own call (a subset of the hook), so one that raises is recorded as that
plugin's failure and the others still register. They are called in load order (``tryfirst`` ones first,
``trylast`` ones last): the plugin loaded first keeps a name two plugins register, and the clash is recorded as
the other plugin's failure, naming both distributions and the switch that disables one.
"""

from __future__ import annotations

import difflib
import importlib.metadata as importlib_metadata
import os
import sys
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import pluggy

from . import hookspecs
from . import plugin as core_plugin
from .__about__ import __version__
from ._errors import PluginError, RegistryClashError
from ._markers import ENTRY_POINT_GROUP, PROJECT_NAME
from ._registry import KINDS, Origin, Registry

__all__ = [
    "NasPluginManager",
    "PluginInfo",
    "get_plugin_manager",
    "set_plugin_manager",
    "use_plugin_manager",
    "register_plugin",
    "unregister_plugin",
]

_PLURAL = {"strategy": "strategies", "proxy": "proxies"}
_REGISTER_HOOK = {kind: f"nas_register_{_PLURAL.get(kind, kind + 's')}" for kind in KINDS}
_SPEC_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("nas_"))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


@dataclass
class PluginInfo:
    """What ``nas plugins`` reports about one plugin."""

    name: str
    module: str
    dist: str | None = None
    version: str | None = None
    source: str = "entry-point"  # "entry-point", "builtin" or "python"
    error: str | None = None
    blocked: bool = False
    registered: dict[str, list[str]] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)
    #: the switch that disabled a blocked plugin (``NAS_DISABLED_PLUGINS=...``, ``NAS_DISABLE_PLUGIN_AUTOLOAD=1``)
    disabled_by: str | None = None
    #: where ``error`` arose: ``"load"`` (import, hook validation), ``"registration"`` (its registration hook
    #: raised: it registers nothing) or ``"clash"`` (a name it registers was taken: its other names stay)
    failed_at: str | None = None

    @property
    def origin(self) -> Origin:
        return Origin(plugin=self.name, module=self.module, dist=self.dist, version=self.version)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.blocked

    def label(self) -> str:
        return f"'{self.name}' ({self.dist} {self.version})" if self.dist else f"'{self.name}'"

    @property
    def status(self) -> str:
        """``"ok"``, ``"blocked"`` or ``"failed"``."""
        return "blocked" if self.blocked else ("failed" if self.error else "ok")

    def switch(self) -> str:
        """How a user turns this plugin off."""
        if self.source == "entry-point":
            return f"NAS_DISABLED_PLUGINS={self.dist or self.name}"
        return f"nas_core.unregister_plugin({self.name!r})"


class NasPluginManager(pluggy.PluginManager):
    """pluggy's manager with discovery, per-plugin error isolation, registries and typed hook calls.

    Build it with :func:`get_plugin_manager` (one shared, lazily created instance) or directly in
    tests (``NasPluginManager(autoload=False)``).
    """

    def __init__(self, *, autoload: bool | None = None, builtins: bool = True):
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}
        self._order: list[str] = []
        self._registries: dict[str, Registry] | None = None
        self._lock = threading.RLock()
        if _truthy(os.environ.get("NAS_TRACE_PLUGINS")):
            self._enable_trace()
        if builtins:
            self._register_checked(core_plugin, "core", source="builtin", dist="nas-core", version=_version("nas-core"))
        if autoload is None:
            autoload = not _truthy(os.environ.get("NAS_DISABLE_PLUGIN_AUTOLOAD"))
            if not autoload:
                self._record_unloaded(f"NAS_DISABLE_PLUGIN_AUTOLOAD={os.environ.get('NAS_DISABLE_PLUGIN_AUTOLOAD')}")
        if autoload:
            self.load_entrypoints()

    # -- discovery ------------------------------------------------------------------------------
    def _record_unloaded(self, switch: str, group: str = ENTRY_POINT_GROUP) -> None:
        """List the installed plugins a switch kept from loading (nothing is imported)."""
        for ep in sorted(importlib_metadata.entry_points(group=group), key=lambda ep: ep.name):
            if ep.name in self._info:
                continue
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            self._info[ep.name] = PluginInfo(ep.name, ep.value, dist, version, blocked=True, disabled_by=switch)
            self._order.append(ep.name)

    def disabled(self) -> dict[str, str]:
        """``{distribution (or plugin name): the switch}`` of every installed plugin a switch disabled."""
        return {(i.dist or i.name): i.disabled_by for i in self._info.values() if i.blocked and i.disabled_by}

    def load_entrypoints(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every plugin of the entry-point group, each inside its own try/except."""
        raw = os.environ.get("NAS_DISABLED_PLUGINS", "")
        disabled = {normalize_dist(x) for x in raw.split(",") if x.strip()}
        eps = sorted(importlib_metadata.entry_points(group=group), key=lambda ep: ep.name)
        for ep in eps:
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if ep.name in self._info and self._info[ep.name].source == "entry-point":
                other = self._info[ep.name]
                if (other.dist, other.module) == (dist, ep.value):
                    continue  # the same distribution seen twice on sys.path
                self._record_failure(
                    ep.name, ep.value, dist, version,
                    f"entry-point name '{ep.name}' is already used by {other.dist or other.module}; entry-point "
                    f"names must be unique across distributions (name it after the distribution)",
                )
                continue
            if "*" in disabled or normalize_dist(ep.name) in disabled or (dist and normalize_dist(dist) in disabled):
                self._info[ep.name] = PluginInfo(ep.name, ep.value, dist, version, blocked=True,
                                                 disabled_by=f"NAS_DISABLED_PLUGINS={raw.strip()}")
                self._order.append(ep.name)
                self.set_blocked(ep.name)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self._record_failure(ep.name, ep.value, dist, version, f"{type(exc).__name__}: {exc}")
                continue
            self._register_checked(module, ep.name, source="entry-point", dist=dist, version=version, module=ep.value)

    def _record_failure(self, name: str, module: str, dist: str | None, version: str | None, error: str) -> None:
        info = PluginInfo(name, module, dist, version, error=error, failed_at="load")
        key = name if name not in self._info else f"{name}@{dist or module}"
        self._info[key] = info
        self._order.append(key)
        warnings.warn(f"nas plugin {info.label()} failed to load: {error}", RuntimeWarning, stacklevel=3)
        self._registries = None

    def _register_checked(
        self,
        plugin: Any,
        name: str,
        *,
        source: str,
        dist: str | None = None,
        version: str | None = None,
        module: str | None = None,
    ) -> str | None:
        module = module or getattr(plugin, "__name__", None) or type(plugin).__qualname__
        problem = _unknown_hooks(plugin)
        if problem:
            self._record_failure(name, module, dist, version, problem)
            return None
        try:
            registered = self.register(plugin, name=name)
        except ValueError as exc:  # pluggy: already registered / validation
            self._record_failure(name, module, dist, version, str(exc))
            return None
        if registered is None:  # blocked
            self._info[name] = PluginInfo(name, module, dist, version, source=source, blocked=True)
            self._order.append(name)
            return None
        info = PluginInfo(name, module, dist, version, source=source)
        info.hooks = sorted(h.name for h in (self.get_hookcallers(plugin) or []))
        self._info[name] = info
        self._order.append(name)
        self._registries = None
        return registered

    def register_plugin(self, plugin: Any, name: str | None = None) -> str:
        """Register a plugin object/module from Python. Errors raise (no silent isolation here)."""
        name = name or getattr(plugin, "__name__", None) or f"{type(plugin).__qualname__}-{id(plugin):x}"
        problem = _unknown_hooks(plugin)
        if problem:
            raise PluginError(f"plugin '{name}': {problem}")
        with self._lock:
            self._register_checked(plugin, name, source="python")
            if name in self._info and self._info[name].error:
                raise PluginError(f"plugin '{name}': {self._info[name].error}")
        return name

    def unregister_plugin(self, name: str) -> None:
        with self._lock:
            plugin = self.get_plugin(name)
            if plugin is not None:
                self.unregister(plugin, name=name)
            self._info.pop(name, None)
            if name in self._order:
                self._order.remove(name)
            self._registries = None

    # -- registries -----------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry:
        """The registry of ``kind``, built on first use by calling each plugin's registration hook."""
        with self._lock:
            if self._registries is None:
                self._registries = self._build_registries()
            return self._registries[kind]

    def invalidate(self) -> None:
        """Forget built registries (they are rebuilt on the next lookup)."""
        with self._lock:
            self._registries = None

    def _failures(self) -> list[tuple[str, str]]:
        return [(i.label(), i.error) for i in self.plugins_info() if i.error]

    def _build_registries(self) -> dict[str, Registry]:
        regs = {kind: Registry(kind, failures=self._failures, disabled=self.disabled) for kind in KINDS}
        for info in self._info.values():
            info.registered = {}
            if info.failed_at in ("registration", "clash"):  # a rebuild tries again
                info.error = info.failed_at = None
        for kind in KINDS:
            self._register_kind(kind, regs[kind], regs)
        return regs

    def _registration_order(self, hook_name: str) -> list[Any]:
        """The plugins' (non-wrapper) implementations of a registration hook: ``tryfirst`` ones, then the rest
        in load order, then ``trylast`` ones."""
        impls = [i for i in getattr(self.hook, hook_name).get_hookimpls() if not (i.wrapper or i.hookwrapper)]
        rank = {name: n for n, name in enumerate(self._order)}
        return sorted(impls, key=lambda i: (0 if i.tryfirst else 2 if i.trylast else 1, rank.get(i.plugin_name, len(rank))))

    def _register_kind(self, kind: str, reg: Registry, regs: Mapping[str, Registry]) -> None:
        """Call every plugin's registration hook of ``kind`` through pluggy, one plugin per call."""
        hook_name = _REGISTER_HOOK[kind]
        impls = self._registration_order(hook_name)
        for impl in impls:
            info = self._info.get(impl.plugin_name)
            if info is None or info.blocked or info.failed_at in ("load", "registration"):
                continue
            # every other plugin's implementation is left out; wrappers (of any plugin) still wrap the call
            call = self.subset_hook_caller(hook_name, remove_plugins=[i.plugin for i in impls if i is not impl])
            before = set(reg._entries)
            try:
                with reg.registering_as(info.origin, on_clash=lambda err, info=info: self._clash(info, err)):
                    call(registry=reg)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self._registration_failed(info, f"{hook_name} raised {type(exc).__name__}: {exc}", regs)
                continue
            added = sorted(set(reg._entries) - before)
            if added:
                info.registered[kind] = added

    def _registration_failed(self, info: PluginInfo, error: str, regs: Mapping[str, Registry]) -> None:
        """A registration hook raised: the plugin registers nothing (what it added is removed)."""
        info.error, info.failed_at = error, "registration"
        info.registered = {}
        for r in regs.values():
            r.discard(info.name)
        warnings.warn(f"nas plugin {info.label()}: {error}", RuntimeWarning, stacklevel=2)

    def _clash(self, info: PluginInfo, err: RegistryClashError) -> None:
        """A name the plugin registers is taken: keep the first entry, record the clash as this plugin's failure."""
        first = next((i for i in self._info.values() if err.first is not None and i.name == err.first.plugin), None)
        switches = " or ".join(s for s in (info.switch(), first.switch() if first else None) if s)
        message = (
            f"{err.kind} '{err.name}' from {err.second} clashes with {err.first}"
            f"{f' (alias of {err.alias_of!r})' if err.alias_of else ''}, which registered it first and keeps it. "
            f"Rename it, or turn one of the two off: {switches}"
        )
        info.error = message if info.error is None else f"{info.error}; {message}"
        info.failed_at = "clash"
        warnings.warn(f"nas plugin {info.label()}: {message}", RuntimeWarning, stacklevel=2)

    # -- introspection ----------------------------------------------------------------------------
    def plugins_info(self) -> list[PluginInfo]:
        """Every plugin seen (loaded, failed or blocked) in load order; registries are built first."""
        with self._lock:
            if self._registries is None:
                self._registries = self._build_registries()
            return [self._info[n] for n in self._order if n in self._info]

    # -- tracing --------------------------------------------------------------------------------
    def _enable_trace(self) -> None:
        def before(hook_name: str, impls: list[Any], kwargs: Mapping[str, Any]) -> None:
            names = [i.plugin_name for i in impls]
            print(f"[nas trace] {hook_name}({', '.join(kwargs)}) -> impls {names}", file=sys.stderr)

        def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: Mapping[str, Any]) -> None:
            exc = outcome.exception
            result = f"raised {exc!r}" if exc is not None else f"returned {outcome.get_result()!r}"
            print(f"[nas trace] {hook_name} {result}", file=sys.stderr)

        self.add_hookcall_monitoring(before, after)

    # -- typed hook forwarding (keyword arguments, as pluggy requires) --------------------------
    def nas_run_start(self, context: Any) -> None:
        self.hook.nas_run_start(context=context)

    def nas_step_end(self, context: Any, step: int, metrics: Mapping[str, float]) -> None:
        self.hook.nas_step_end(context=context, step=step, metrics=metrics)

    def nas_epoch_end(self, context: Any, epoch: int, metrics: Mapping[str, float]) -> None:
        self.hook.nas_epoch_end(context=context, epoch=epoch, metrics=metrics)

    def nas_candidate_evaluated(self, context: Any, arch: Any, scores: Mapping[str, float]) -> None:
        self.hook.nas_candidate_evaluated(context=context, arch=arch, scores=scores)

    def nas_run_end(self, context: Any, result: Any) -> None:
        self.hook.nas_run_end(context=context, result=result)

    def nas_run_failed(self, context: Any, error: BaseException) -> None:
        self.hook.nas_run_failed(context=context, error=error)


def normalize_dist(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return __version__ if dist == "nas-core" else None


def _unknown_hooks(plugin: Any) -> str | None:
    """Reject ``nas_*`` hook implementations that match no specification (typos), naming the fix."""
    marker_attr = PROJECT_NAME + "_impl"
    for attr in dir(plugin):
        if not attr.startswith("nas_"):
            continue
        obj = getattr(plugin, attr, None)
        if obj is None or not hasattr(obj, marker_attr):
            continue
        if attr not in _SPEC_NAMES:
            close = difflib.get_close_matches(attr, sorted(_SPEC_NAMES), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return f"implements unknown hook '{attr}'{hint}; valid hooks: {', '.join(sorted(_SPEC_NAMES))}"
    return None


# -- the shared instance --------------------------------------------------------------------------
_PM: NasPluginManager | None = None
_PM_LOCK = threading.Lock()


def get_plugin_manager() -> NasPluginManager:
    """The shared plugin manager, created (and entry points loaded) on first use, never at import."""
    global _PM
    if _PM is None:
        with _PM_LOCK:
            if _PM is None:
                pm = NasPluginManager()
                pm.check_pending()
                _PM = pm
    return _PM


def set_plugin_manager(pm: NasPluginManager | None) -> NasPluginManager | None:
    """Replace the shared manager (``None`` resets it to be rebuilt lazily); returns the old one."""
    global _PM
    with _PM_LOCK:
        old, _PM = _PM, pm
    return old


@contextmanager
def use_plugin_manager(pm: NasPluginManager) -> Iterator[NasPluginManager]:
    """Use ``pm`` as the shared manager inside the block (tests, isolated experiments)."""
    old = set_plugin_manager(pm)
    try:
        yield pm
    finally:
        set_plugin_manager(old)


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin defined in Python (a module, class instance or namespace of hookimpls).

    Returns the plugin name (pass it to :func:`unregister_plugin`).
    """
    return get_plugin_manager().register_plugin(plugin, name)


def unregister_plugin(name: str) -> None:
    get_plugin_manager().unregister_plugin(name)
