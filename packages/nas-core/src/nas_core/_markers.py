"""The pluggy markers of the project ``nas``."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "nas"
ENTRY_POINT_GROUP = "nas"

#: Decorator for hook implementations: the only thing a plugin needs to import.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
#: Decorator for hook specifications (used by :mod:`nas_core.hookspecs` only).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
