"""How to install a missing distribution, said in terms that work where the user is.

nas-core's own installation tells: from a checkout (``pip install ./packages/nas-core``, editable or not) the
siblings are folders beside it; from a wheel file the siblings may lie in the same folder; from an index they come
from the index. ``direct_url.json`` (PEP 610) of the installed nas-core records which.
"""

from __future__ import annotations

import importlib.metadata as importlib_metadata
import json
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["install_hint", "missing_command"]


def _origin(dist: str = "nas-core") -> dict[str, Any] | None:
    try:
        raw = importlib_metadata.distribution(dist).read_text("direct_url.json")
    except importlib_metadata.PackageNotFoundError:
        return None
    try:
        return json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return None


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def install_hint(*dists: str, origin: dict[str, Any] | None | str = "installed") -> str:
    """``pip install ...`` for ``dists``: checkout folders when nas-core came from a checkout, the wheel folder
    (``--find-links``) when it came from a wheel beside theirs, else the names (an index).

    :param origin: nas-core's ``direct_url.json`` content (default: read from the installed nas-core).
    """
    info = _origin() if origin == "installed" else origin
    names = " ".join(dists)
    if not isinstance(info, dict) or not info.get("url"):
        return f"pip install {names}"
    where = _local_path(info["url"])
    if where is None:  # a VCS or remote URL: the index is the best bet
        return f"pip install {names}"
    if "dir_info" in info:  # a checkout: packages/nas-core beside packages/nas-spaces
        folders = [where.parent / d for d in dists]
        if all((f / "pyproject.toml").exists() for f in folders):
            editable = "-e " if (info.get("dir_info") or {}).get("editable") else ""
            return "pip install " + " ".join(f"{editable}{shlex.quote(str(f))}" for f in folders)
        return f"pip install {names}"
    folder = where.parent  # a wheel or sdist file: look for the others beside it
    found = all(any(folder.glob(f"{d.replace('-', '_')}-*")) or any(folder.glob(f"{d}-*")) for d in dists)
    if found:
        return f"pip install --find-links {shlex.quote(str(folder))} {names}"
    return f"pip install {names}"


def missing_command(name: str) -> str | None:
    """Why ``nas NAME`` does not exist, for a first-party command whose distribution is missing, blocked or
    broken (``None`` for names no known distribution provides)."""
    from ._plugins import get_plugin_manager
    from ._registry import FIRST_PARTY, normalize_name

    provider = FIRST_PARTY.get("command", {}).get(normalize_name(name))
    if provider is None:
        return None
    for info in get_plugin_manager().plugins_info():
        if info.dist == provider and info.blocked:
            return f"'{name}' is a command of {provider}, which is disabled here (NAS_DISABLED_PLUGINS)"
        if info.dist == provider and info.error:
            return f"'{name}' is a command of {provider}, which failed to load: {info.error}"
    return f"'{name}' is a command of {provider}, which is not installed: {install_hint(provider)}"
