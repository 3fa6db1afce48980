"""Exceptions of the ecosystem. Every message names the cause and the fix."""

from __future__ import annotations

from typing import Any

__all__ = [
    "NasError",
    "UnknownNameError",
    "RegistryClashError",
    "ConfigError",
    "IncompatibleError",
    "ArchitectureError",
    "NonFiniteError",
    "CheckpointError",
    "DataError",
    "PluginError",
    "Terminated",
]


class NasError(Exception):
    """Base class of every error raised by the ecosystem."""


class UnknownNameError(NasError, KeyError):
    """An unknown space/objective/strategy/proxy name.

    A ``KeyError`` subclass (so ``except KeyError`` keeps working) whose ``str`` is the readable
    message rather than ``KeyError``'s quoted repr.
    """

    def __init__(self, message: str, *, kind: str = "", name: str = "", suggestions: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.suggestions = suggestions

    def __str__(self) -> str:
        return self.message


class RegistryClashError(NasError, ValueError):
    """Two plugins registered the same name (or alias) for the same kind.

    ``first`` and ``second`` are the origins (:class:`nas_core.Origin`) of the kept entry and of the newcomer;
    ``alias_of`` names the entry when the taken name is one of its aliases.
    """

    def __init__(self, message: str, *, kind: str = "", name: str = "", first: Any = None, second: Any = None,
                 alias_of: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.first = first
        self.second = second
        self.alias_of = alias_of


class ConfigError(NasError, ValueError):
    """An invalid option or value; the message gives the full path of the option."""


class IncompatibleError(NasError, ValueError):
    """A combination that cannot work (e.g. DARTS on a space without a differentiable supernet).

    Raised before any compute, with the compatible alternatives in the message.
    """


class ArchitectureError(NasError, ValueError):
    """A malformed architecture string, genotype or encoding; the message points at the bad part."""


class NonFiniteError(NasError, FloatingPointError):
    """A loss or score became NaN or infinite. The run stops; the last good checkpoint is kept."""


class CheckpointError(NasError, RuntimeError):
    """A checkpoint that cannot be read, or that belongs to a different run configuration."""


class DataError(NasError, ValueError):
    """Unreadable data: the message names the file or dataset and what to do."""


class PluginError(NasError, RuntimeError):
    """A plugin misbehaved (bad hook name, failing registration hook, ...)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM stopped the command (``nas`` handles it as Ctrl-C: the failure hooks fire, the checkpoint is kept).

    A ``KeyboardInterrupt`` subclass, not a :class:`NasError`: code that stops cleanly on Ctrl-C does so here too.
    """
