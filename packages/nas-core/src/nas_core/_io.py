"""Atomic file writes (a temp file in the same directory, fsync, then ``os.replace``) and safe JSON reads."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from ._errors import ConfigError

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_write", "read_json", "is_directory"]


def atomic_write(path: str | Path, write: Callable[[Any], None], *, mode: str = "wb") -> Path:
    """Call ``write(fileobj)`` on a temp file next to ``path`` and rename it into place.

    A reader never sees a half-written file: either the old content or the new one. A symbolic link at ``path`` is
    replaced, never written through.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text), mode="w")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data), mode="wb")


def is_directory(text: str | Path) -> bool:
    """Whether ``text`` names an existing directory; ``False`` (never an error) for strings that cannot be paths at
    all: too long, a NUL byte, ... (an architecture string or a dataset name is often tested first as a path)."""
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, ValueError, RuntimeError):  # RuntimeError: '~user' of an unknown user
        return False


def read_json(path: str | Path, *, what: str = "", expect: type | None = dict) -> Any:
    """The JSON value in ``path``; a missing, unreadable or damaged file (or one that holds something other than
    ``expect``) raises :class:`nas_core.ConfigError` naming the file, never a ``JSONDecodeError``."""
    path = Path(path)
    label = f"{what} '{path}'" if what else f"'{path}'"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{label} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label} cannot be read ({type(exc).__name__}: {exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{label} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): the file is damaged; "
            f"restore it from a copy, or start a new run"
        ) from exc
    if expect is not None and not isinstance(data, expect):
        raise ConfigError(f"{label} holds a JSON {type(data).__name__}, expected an object ({{...}}): the file is damaged")
    return data
