"""nas-core's own plugin: the built-in CLI commands. Registered directly (it cannot be disabled)."""

from __future__ import annotations

from ._markers import hookimpl
from ._registry import Registry


@hookimpl
def nas_register_commands(registry: Registry) -> None:
    registry.add("plugins", "nas_core.commands.plugins:COMMAND", summary="list plugins, what they registered and what failed")
