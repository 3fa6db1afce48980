"""nas-core's own plugin: the built-in CLI commands. Registered directly (it cannot be disabled)."""

from __future__ import annotations

from ._markers import hookimpl
from ._registry import Registry


@hookimpl
def nas_register_commands(registry: Registry) -> None:
    registry.add("plugins", "nas_core.commands.plugins:COMMAND", summary="list plugins, what they registered and what failed")
    registry.add("search", "nas_core.commands.search:COMMAND", summary="run a label-free architecture search")
    registry.add("train", "nas_core.commands.train:COMMAND", summary="train a found architecture with labels (evaluation phase)")
    registry.add("bench", "nas_core.commands.bench:COMMAND", summary="look an architecture up in a tabular benchmark")
    registry.add("show", "nas_core.commands.show:COMMAND", summary="summarise a run and redraw its pictures")
