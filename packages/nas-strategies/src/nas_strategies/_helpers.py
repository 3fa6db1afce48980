"""Small helpers of the strategies: stable hashes and seeds, seeded RNG forks, display names, and which
keyword arguments a callable accepts."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any, Iterator

import torch

from nas_core import SearchSpace, accepted_kwargs  # noqa: F401 - accepted_kwargs is re-exported for the strategies

__all__ = ["fingerprint", "arch_seed", "seeded", "space_name", "accepted_kwargs"]


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-serialisable object (or of a tensor's bytes)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        data = t.numpy().tobytes() + str(tuple(t.shape)).encode() + str(t.dtype).encode()
        return hashlib.sha256(data).hexdigest()[:16]
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def arch_seed(seed: int, arch: Any) -> int:
    """A torch seed that depends only on the run seed and the architecture (not on evaluation order),
    so a candidate scores the same on any rank, in any generation, before or after a resume."""
    digest = hashlib.sha256(f"{int(seed)}|{arch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63 - 1)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Fork the global torch RNG (CPU, and the CUDA device in use), seed it, and restore it on exit."""
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def space_name(space: SearchSpace) -> str:
    return space.registered_name or space.name or type(space).__name__
