"""Locating the shared NAS-Bench-201 ground truth (``../shared/data`` beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir(start: str | Path | None = None) -> Path | None:
    """``$NAS_SHARED_DATA``, else the first ``shared/data`` beside an ancestor of ``start`` (or cwd)."""
    env = os.environ.get("NAS_SHARED_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    here = Path(start or Path.cwd()).resolve()
    for parent in (here, *here.parents):
        cand = parent.parent / "shared" / "data"
        if cand.is_dir() and (cand / "nb201_cifar10.json").exists():
            return cand
    return None
