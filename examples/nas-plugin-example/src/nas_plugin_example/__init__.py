"""A third-party nas plugin, shaped exactly like the first-party packages: copy this directory to start yours."""

from .__about__ import __version__

__all__ = ["__version__"]
