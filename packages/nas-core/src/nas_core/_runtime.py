"""Devices, precision, seeding, torch.distributed set-up and checkpoint files."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ._errors import CheckpointError, ConfigError
from ._io import atomic_write

__all__ = [
    "select_device",
    "parse_device",
    "autocast",
    "seed_everything",
    "DistState",
    "init_distributed",
    "save_checkpoint",
    "load_checkpoint",
    "PRECISIONS",
]

PRECISIONS = ("fp32", "bf16")


def select_device(device: str | torch.device | None = "auto", *, local_rank: int = 0) -> torch.device:
    """``"auto"`` picks ``cuda:<local_rank>``, then ``mps``, then ``cpu``; anything torch accepts otherwise."""
    if isinstance(device, torch.device):
        return device
    if device is not None and not isinstance(device, str):
        device = str(parse_device(device))
    spec = (device or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = parse_device(spec)
    if dev.type not in ("cpu", "cuda"):
        backend = getattr(torch.backends, dev.type, None) or getattr(torch, dev.type, None)
        available = getattr(backend, "is_available", None)
        if available is None or not available():
            raise ConfigError(f"device: '{device}' is not available in this torch build ({torch.__version__}); use --device cpu or auto")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device: '{device}' asked for CUDA but torch sees no GPU (torch {torch.__version__}, "
                f"CUDA build: {torch.version.cuda}); use --device cpu or auto"
            )
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    return dev


def parse_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device``; anything torch cannot parse raises :class:`ConfigError` (never a bare
    ``RuntimeError``)."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ConfigError(f"device: expected a name such as cpu, cuda or cuda:1, got {type(device).__name__} {device!r}")
    try:
        return torch.device(device.strip().lower())
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device: '{device}' is not a torch device (use auto, cpu, cuda, cuda:1, mps)") from exc


def autocast(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on the device (CUDA or CPU); a no-op for fp32."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: '{precision}' is not supported (choose from {', '.join(PRECISIONS)})")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


#: torch's deterministic mode also fills every new tensor with NaN, a debugging check for kernels that read memory
#: they did not write. It makes no result more reproducible (a search gives bitwise the same result without it,
#: tested) and it costs time: 5% of a CPU DARTS epoch on the C=16, N=5 supernet (41.3 -> 39.2 s), and far more
#: on a freshly started virtual machine whose memory is touched for the first time, so it is off
FILL_UNINITIALIZED_MEMORY = False


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; make CPU kernels (and cuDNN) deterministic when asked."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = FILL_UNINITIALIZED_MEMORY


@dataclass(frozen=True)
class DistState:
    """Where this process sits in a torchrun job (``world_size == 1`` when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str | None = None, *, timeout_s: float = 600.0) -> DistState:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``, ...).

    Uses NCCL for CUDA and gloo otherwise. Without those variables (or ``WORLD_SIZE=1``) it returns a
    single-process state and does nothing.
    """
    import datetime

    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistState()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if dist.is_available() and dist.is_initialized():
        return DistState(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend(), False)
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world} but {', '.join(missing)} is not set; launch with torchrun "
            f"(torchrun --nproc_per_node=N -m nas_core.cli search ...)"
        )
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    # leave the group before interpreter teardown: a gloo/NCCL group still alive at exit can abort the process
    atexit.register(_leave_process_group)
    return DistState(dist.get_rank(), dist.get_world_size(), local_rank, backend, True)


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` atomically (temp file + rename): never half-written."""
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    return atomic_write(path, lambda fh: fh.write(data))


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain Python values only)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist; nothing to resume from")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        raise CheckpointError(
            f"checkpoint '{path}' cannot be loaded safely ({type(exc).__name__}: {exc}). It may be corrupt or "
            f"hold arbitrary Python objects; checkpoints of this project hold only tensors and plain values."
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint '{path}' holds a {type(state).__name__}, expected a dict")
    return state


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
