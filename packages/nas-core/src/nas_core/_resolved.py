"""Every option a component was built with, defaults included, so that ``config.json`` alone reproduces a run
(``nas search --config RUN_DIR/config.json --run-dir NEW``) even after a default changes."""

from __future__ import annotations

import inspect
import math
from typing import Any, Mapping

__all__ = ["resolved_options", "resolved_sections"]

_OMIT = object()


def _plain(value: Any) -> Any:
    """``value`` as JSON data when it survives a round trip (tuples become lists), else ``_OMIT``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _OMIT
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _OMIT if any(v is _OMIT for v in items) else items
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            return _OMIT
        items = {k: _plain(v) for k, v in value.items()}
        return _OMIT if any(v is _OMIT for v in items.values()) else items
    return _OMIT  # sets, callables, objects: left to the factory's default


def resolved_options(kind: str, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` plus every keyword the factory of ``name`` would fill in itself: the preset's defaults, then
    the signature's (those that are plain JSON data; the others stay the factory's business)."""
    from ._factory import get_entry

    entry = get_entry(kind, name)
    try:
        params = inspect.signature(entry.load()).parameters
    except (TypeError, ValueError):
        return dict(given)
    out: dict[str, Any] = {}
    for pname, p in params.items():
        if pname in ("self", "name") or pname in given or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        default = entry.defaults[pname] if pname in entry.defaults else p.default
        if default is p.empty:
            continue
        value = _plain(default)
        if value is not _OMIT:
            out[pname] = value
    out.update(given)
    return out


def resolved_sections(public: Mapping[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    """``public`` (the run configuration as JSON) with each named component's section completed by
    :func:`resolved_options`; a component given as an instance records what its ``config()`` says."""
    out = dict(public)
    for kind, section in components.items():
        if not isinstance(section, Mapping) or "name" not in section:
            continue
        instance = section.get("_instance")
        # what the user gave, as the JSON of ``public`` holds it
        given = {k: v for k, v in (public.get(kind) or {}).items() if k not in ("name", "_instance")}
        if instance is not None:
            config = getattr(instance, "config", None)
            given = {k: v for k, v in (config() if callable(config) else {}).items() if _plain(v) is not _OMIT}
        try:
            options = resolved_options(kind, section["name"], given)
        except KeyError:  # an instance of a class that is not registered: what it says about itself
            options = given
        out[kind] = {"name": section["name"], **{k: v for k, v in options.items() if _plain(v) is not _OMIT}}
    return out
