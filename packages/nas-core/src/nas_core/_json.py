"""JSON-safe values: the one sanitiser of results, configs, histories and checkpoint metadata."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: mappings and sequences recursively, NaN/inf as strings (not invalid JSON), numpy and
    torch scalars and arrays as numbers and lists, paths and anything else as their string."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return jsonable(value.item())
        except (ValueError, RuntimeError):
            pass
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    return str(value)
