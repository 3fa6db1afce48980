"""timm-style factories over the registries: ``create_space("nb201", channels=8)``."""

from __future__ import annotations

from typing import Any, Mapping

from ._arch import Architecture
from ._errors import ArchitectureError
from ._plugins import NasPluginManager, get_plugin_manager
from ._registry import Entry

__all__ = [
    "create_space",
    "create_objective",
    "create_strategy",
    "create_proxy",
    "list_spaces",
    "list_objectives",
    "list_strategies",
    "list_proxies",
    "get_entry",
    "arch_from_json",
]


def get_entry(kind: str, name: str) -> Entry:
    """The registry entry of ``kind`` (``"space"``, ``"objective"``, ...) for ``name`` or an alias."""
    return get_plugin_manager().registry(kind).get(name)


def _create(kind: str, name: str, cfg: dict[str, Any]) -> Any:
    return get_plugin_manager().registry(kind).create(name, **cfg)


def create_space(name: str, **cfg: Any) -> Any:
    """Build a search space by name (``"nb201"``, ``"darts_s2"``, ``"vit"``, ...).

    Options override the preset; ``None`` values are pruned. An unknown name raises
    :class:`nas_core.UnknownNameError` (a ``KeyError``) that suggests the closest one.
    """
    return _create("space", name, cfg)


def create_objective(name: str, **cfg: Any) -> Any:
    """Build an objective by name (``"mim"``, ``"rotation"``, ...)."""
    return _create("objective", name, cfg)


def create_strategy(name: str, **cfg: Any) -> Any:
    """Build a search strategy by name (``"darts"``, ``"evolution"``, ...)."""
    return _create("strategy", name, cfg)


def create_proxy(name: str, **cfg: Any) -> Any:
    """Build a zero-cost proxy by name (``"synflow"``, ``"unified"``, ...)."""
    return _create("proxy", name, cfg)


def _list(kind: str, filter: str | None, exclude: str | tuple[str, ...]) -> list[str]:
    return get_plugin_manager().registry(kind).names(filter, exclude)


def list_spaces(filter: str | None = None, exclude: str | tuple[str, ...] = ()) -> list[str]:
    """Registered space names, sorted, optionally filtered with fnmatch patterns."""
    return _list("space", filter, exclude)


def list_objectives(filter: str | None = None, exclude: str | tuple[str, ...] = ()) -> list[str]:
    """Registered objective names, sorted, optionally filtered with fnmatch patterns."""
    return _list("objective", filter, exclude)


def list_strategies(filter: str | None = None, exclude: str | tuple[str, ...] = ()) -> list[str]:
    """Registered strategy names, sorted, optionally filtered with fnmatch patterns."""
    return _list("strategy", filter, exclude)


def list_proxies(filter: str | None = None, exclude: str | tuple[str, ...] = ()) -> list[str]:
    """Registered proxy names, sorted, optionally filtered with fnmatch patterns."""
    return _list("proxy", filter, exclude)


def arch_from_json(data: Mapping[str, Any], space: Any = None, *, plugin_manager: NasPluginManager | None = None) -> Architecture:
    """Rebuild an architecture from :meth:`Architecture.to_json` output.

    Without ``space``, the space is created by name (default options) from ``plugin_manager``'s registry
    (default: the shared manager).
    """
    if "arch" not in data:
        raise ArchitectureError(f"architecture JSON needs an 'arch' key, got keys {sorted(data)}")
    if space is None:
        pm = plugin_manager if plugin_manager is not None else get_plugin_manager()
        space = pm.registry("space").create(str(data.get("space") or ""))
    return space.parse(str(data["arch"]))
