"""Lazy package attributes (PEP 562), shared by nas-core and the plugin packages, so that importing a package (and
listing plugins) never imports torch until a torch-heavy name is used."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package`` whose ``names`` map an attribute to the relative module
    defining it (``{"RunContext": "._context"}``). The first access imports the module and caches the value on the
    package; an unknown name raises the usual :class:`AttributeError`.

    Usage, in a package's ``__init__.py``::

        __getattr__, __dir__ = lazy_exports(__name__, {"MyThing": "._thing"})
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
