"""RunContext: everything a strategy needs from the runtime, so strategies never pick devices,
seed globals, write files or talk to torch.distributed themselves."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sys
import time
import weakref
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence, TypeVar

import numpy as np
import torch
import torch.nn as nn

from ._data import make_loader
from ._errors import CheckpointError, ConfigError, NonFiniteError
from ._io import atomic_write_text
from ._json import jsonable as _jsonable
from ._plugins import get_plugin_manager
from ._rundir import append_line, open_run_dir, run_dir_path
from ._progress import EpochLines, check_progress, wants_bars, wants_lines
from ._threads import apply_threads, describe
from ._runtime import (
    PRECISIONS,
    DistState,
    autocast,
    init_distributed,
    load_checkpoint,
    parse_device,
    save_checkpoint,
    seed_everything,
    select_device,
)

__all__ = ["RunContext"]

T = TypeVar("T")

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.jsonl"
CONFIG_NAME = "config.json"
RESULT_NAME = "result.json"


def _stream_seed(seed: int, stream: str) -> int:
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class RunContext:
    """Device, precision, seed, distributed state, run directory, checkpoints, progress and hooks.

    :param device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda:1"``, ...
    :param precision: ``"fp32"`` or ``"bf16"`` (autocast on the device).
    :param seed: the run seed; every random stream derives from it.
    :param run_dir: where config, history, checkpoint, result and pictures go (``None``: nothing is
        written). It must be new or empty unless ``resume=True``, and it is locked for the run's life: a second
        process on it is refused, naming the first (see :meth:`close`).
    :param resume: continue from ``run_dir/checkpoint.pt``.
    :param progress: ``None``: progress bars on a terminal, else one line per epoch or generation (metrics, time,
        ETA) on stderr; ``True``: bars; ``"lines"``: lines; ``False``: neither. Always off on non-main ranks.
    :param deterministic: deterministic kernels (CPU always; cuDNN when on GPU).
    :param distributed: join the torchrun process group when the environment describes one.
    :param config: the resolved run configuration (saved as ``config.json``; a resumed run must match it).
    :param plugin_manager: the manager whose lifecycle hooks are called (default: the shared one).
    :param channels_last: use channels-last memory format on CUDA.
    :param compile: ask the strategy to run its training forward through ``torch.compile`` (strategies whose
        ``supports_compile`` is true read it; ``nas_core.search`` refuses it for the others).
    :param threads: CPU threads of torch: ``"auto"`` (the usable CPUs other processes leave idle, see
        :mod:`nas_core._threads`), a number, or ``None`` to leave torch's setting alone.
    """

    def __init__(
        self,
        *,
        device: str | torch.device | None = "auto",
        precision: str = "fp32",
        seed: int = 0,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool | None = None,
        deterministic: bool = True,
        distributed: bool = True,
        config: Mapping[str, Any] | None = None,
        plugin_manager: Any = None,
        channels_last: bool = False,
        compile: bool = False,
        log_every: int = 10,
        threads: int | str | None = "auto",
    ):
        if precision not in PRECISIONS:
            raise ConfigError(f"precision: '{precision}' is not supported (choose from {', '.join(PRECISIONS)})")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ConfigError(f"seed: expected an integer, got {seed!r}")
        self.dist = init_distributed(None if device in (None, "auto") else parse_device(device).type) if distributed else DistState()
        self.device = select_device(device, local_rank=self.dist.local_rank)
        self.threads = None if threads is None else apply_threads(threads, warn=self.is_main)
        self.precision = precision
        self.seed = int(seed)
        self.deterministic = deterministic
        self.run_dir = run_dir_path(run_dir)
        if self.dist.enabled:  # every rank uses rank 0's directory (default names may embed a time stamp)
            self.run_dir = self.broadcast_object(self.run_dir)
        self.resume = bool(resume)
        self.progress_enabled = check_progress(progress)
        self._lines = EpochLines() if self.is_main and wants_lines(progress) else None
        self.config: dict[str, Any] = dict(config or {})
        self._pm = plugin_manager
        self.channels_last = channels_last and self.device.type == "cuda"
        self.compile = compile
        self.log_every = max(1, int(log_every))
        self.history: list[dict[str, Any]] = []
        self.result: Any = None
        #: distribution versions of what the run uses (filled by nas_core.search; copied into the result)
        self.versions: dict[str, str] = {}
        self._rngs: dict[str, np.random.Generator] = {}
        self._tgens: dict[str, torch.Generator] = {}
        self._started = False
        self._last_good: Path | None = None
        self._lock: Any = None
        #: the lock is given up by finish() unless the caller that created the context releases it (close())
        self._hold_lock = False
        if self.resume and self.run_dir is None:
            raise ConfigError("resume=True needs run_dir (the directory of the interrupted run)")
        if self.run_dir is not None and self.is_main:
            self._lock = open_run_dir(self.run_dir, resume=self.resume, fingerprint=self.fingerprint())
            self._release = weakref.finalize(self, self._lock.release)

    def close(self) -> None:
        """Release the run directory's lock (idempotent). :meth:`finish`, a failed run and garbage collection
        release it too; use ``with RunContext(...) as context:`` to release it at the end of a block."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- identity -------------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self.dist.rank

    @property
    def world_size(self) -> int:
        return self.dist.world_size

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def distributed(self) -> bool:
        return self.dist.enabled

    @property
    def plugin_manager(self) -> Any:
        if self._pm is None:
            self._pm = get_plugin_manager()
        return self._pm

    def fingerprint(self) -> str:
        """A hash of the configuration that must not change across a resume."""
        volatile = ("resume", "run_dir", "progress", "device", "trackers", "pictures", "download", "threads")
        cfg = {k: v for k, v in self.config.items() if k not in volatile}
        if isinstance(cfg.get("run"), Mapping):
            cfg["run"] = {k: v for k, v in cfg["run"].items() if k not in volatile}
        return hashlib.sha256(json.dumps(_jsonable(cfg), sort_keys=True).encode()).hexdigest()[:16]

    # -- randomness -----------------------------------------------------------------------------
    def rng(self, stream: str = "default") -> np.random.Generator:
        """A numpy Generator for a named stream, derived from the seed (checkpointed and restored)."""
        if stream not in self._rngs:
            self._rngs[stream] = np.random.default_rng(_stream_seed(self.seed, stream))
        return self._rngs[stream]

    def torch_generator(self, stream: str = "data") -> torch.Generator:
        """A CPU torch.Generator for a named stream (e.g. DataLoader shuffling), checkpointed too."""
        if stream not in self._tgens:
            g = torch.Generator()
            g.manual_seed(_stream_seed(self.seed, stream) % (2**63))
            self._tgens[stream] = g
        return self._tgens[stream]

    def _rng_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "numpy": {k: g.bit_generator.state for k, g in self._rngs.items()},
            "torch_streams": {k: g.get_state() for k, g in self._tgens.items()},
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _restore_rng_state(self, state: Mapping[str, Any]) -> None:
        for k, s in (state.get("numpy") or {}).items():
            self.rng(k).bit_generator.state = s
        for k, s in (state.get("torch_streams") or {}).items():
            self.torch_generator(k).set_state(s)
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    # -- device and precision -------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast when ``precision="bf16"``, else a no-op."""
        return autocast(self.device, self.precision)

    def to_device(self, obj: T) -> T:
        """Move a module or tensor to the device (channels-last on CUDA when asked)."""
        if isinstance(obj, nn.Module):
            obj = obj.to(self.device)
            if self.channels_last:
                obj = obj.to(memory_format=torch.channels_last)
            return obj  # type: ignore[return-value]
        if isinstance(obj, torch.Tensor):
            non_blocking = self.device.type == "cuda"
            out = obj.to(self.device, non_blocking=non_blocking)
            if self.channels_last and out.dim() == 4:
                out = out.contiguous(memory_format=torch.channels_last)
            return out  # type: ignore[return-value]
        return obj

    # -- distributed helpers --------------------------------------------------------------------
    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place mean over ranks (returns the tensor); a no-op in a single process."""
        if self.distributed:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
            tensor.div_(self.world_size)
        return tensor

    def all_gather_object(self, obj: Any) -> list[Any]:
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        if not self.distributed:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=src)
        return box[0]

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items`` (round-robin), for population evaluation."""
        return list(items[self.rank :: self.world_size])

    # -- data -----------------------------------------------------------------------------------
    def loader(self, dataset: Any, batch_size: int, *, shuffle: bool = True, drop_last: bool = True, stream: str = "data", **kwargs: Any) -> Any:
        """A DataLoader tuned for the device (see :func:`nas_core.make_loader`)."""
        return make_loader(dataset, batch_size, shuffle=shuffle, drop_last=drop_last, context=self, stream=stream, **kwargs)

    # -- progress -------------------------------------------------------------------------------
    def progress(self, iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", **kwargs: Any) -> Any:
        """A tqdm progress bar (off on non-main ranks; on a terminal only unless ``progress=True``)."""
        from tqdm.auto import tqdm

        bars = wants_bars(self.progress_enabled) if self.is_main else False
        disable = None if bars is None else not bars
        return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True, leave=False, file=sys.stderr, **kwargs)

    def expect_epochs(self, total: int, phase: str = "") -> None:
        """Tell the progress lines how many epochs (or generations) a phase reports, for their ETA
        (``phase`` is the ``"phase"`` metric of the phase's :meth:`log_epoch` records, ``""`` when none)."""
        if self._lines is not None:
            self._lines.expect(total, phase)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Seed, create the run directory, save the config, call ``nas_run_start``."""
        seed_everything(self.seed, deterministic=self.deterministic)
        if self.run_dir is not None and self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg_path = self.run_dir / CONFIG_NAME
            if not self.resume or not cfg_path.exists():
                payload = {**_jsonable(self.config), "_seed": self.seed, "_fingerprint": self.fingerprint()}
                atomic_write_text(cfg_path, json.dumps(payload, indent=2) + "\n")
        self._started = True
        self._t0 = time.perf_counter()
        if self._lines is not None:
            self._lines.restart_clock()
            where = f", run directory {self.run_dir}" if self.run_dir is not None else ""
            threads = f", {describe(self.threads)}" if self.threads is not None and self.device.type == "cpu" else ""
            print(f"nas: {'resuming' if self.resume else 'starting'} on {self.device}{threads}{where}",
                  file=sys.stderr, flush=True)
        self.plugin_manager.nas_run_start(context=self)

    @contextlib.contextmanager
    def lifecycle(self) -> Iterator[RunContext]:
        """``with context.lifecycle(): ...``: start (if not yet), and report failures to the hooks."""
        if not self._started:
            self.start()
        try:
            yield self
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and hasattr(exc, "add_note") and self.run_dir is not None:
                exc.add_note(self.resume_note())
            try:
                self.plugin_manager.nas_run_failed(context=self, error=exc)
            finally:
                self.close()
            raise

    def resume_note(self) -> str:
        """What an interrupted run leaves behind and how to continue it."""
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            return f"The last checkpoint is kept in {self.run_dir}; continue with resume=True and the same options."
        return f"No checkpoint was saved yet in {self.run_dir}: nothing to resume; delete it and start again."

    def finish(self, result: Any) -> Any:
        """Record the result, write ``result.json`` (main rank), call ``nas_run_end``, release the run directory's
        lock (unless the caller holds it until it is done: :func:`nas_core.search` does); returns ``result``."""
        self.result = result
        if self.versions and hasattr(result, "versions"):
            # the run knows every distribution it composed; a strategy may only know its own
            result.versions = {**(result.versions or {}), **self.versions}
        if self.run_dir is not None and self.is_main and hasattr(result, "save"):
            result.save(self.run_dir / RESULT_NAME)
        self.plugin_manager.nas_run_end(context=self, result=result)
        if not self._hold_lock:
            self.close()
        return result

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - getattr(self, "_t0", time.perf_counter())

    # -- metrics --------------------------------------------------------------------------------
    def check_finite(self, value: float | torch.Tensor, what: str = "loss", **where: Any) -> float:
        """Return ``value`` as a float, or stop the run with :class:`NonFiniteError` naming it."""
        v = float(value.detach().float().item()) if isinstance(value, torch.Tensor) else float(value)
        if not math.isfinite(v):
            loc = ", ".join(f"{k} {w}" for k, w in where.items())
            kept = (
                f" The last good checkpoint is kept at {self.run_dir / CHECKPOINT_NAME}."
                if self.run_dir is not None and (self.run_dir / CHECKPOINT_NAME).exists()
                else ""
            )
            raise NonFiniteError(
                f"{what} became {v}{f' at {loc}' if loc else ''}. The run stops here.{kept} Lower the learning "
                f"rate, use precision='fp32', or check the data for NaNs."
            )
        return v

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        """Report a training step to the hooks (and every ``log_every`` steps to the history file)."""
        clean = {k: float(v) for k, v in metrics.items()}
        if step % self.log_every == 0:
            self._append({"kind": "step", "step": int(step), **clean})
        self.plugin_manager.nas_step_end(context=self, step=int(step), metrics=clean)

    def log_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Report an epoch/generation to the hooks and the history file."""
        clean = _jsonable(dict(metrics))
        self._append({"kind": "epoch", "epoch": int(epoch), **clean})
        if self._lines is not None:
            self._lines.report(int(epoch), clean)
        self.plugin_manager.nas_epoch_end(context=self, epoch=int(epoch), metrics=clean)

    def candidate_evaluated(self, arch: Any, scores: Mapping[str, float]) -> None:
        self.plugin_manager.nas_candidate_evaluated(context=self, arch=arch, scores=dict(scores))

    def _append(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.run_dir is not None and self.is_main:
            append_line(self.run_dir / HISTORY_NAME, json.dumps(record) + "\n")

    def epoch_history(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "kind"} for r in self.history if r.get("kind") == "epoch"]

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / CHECKPOINT_NAME

    def save_checkpoint(self, state: Mapping[str, Any]) -> Path | None:
        """Atomically save ``state`` plus RNG streams and history (main rank only; others wait)."""
        path = self.checkpoint_path
        if path is None:
            return None
        if self.is_main:
            payload = dict(state)
            payload["_nas"] = {
                "fingerprint": self.fingerprint(),
                "seed": self.seed,
                "world_size": self.world_size,
                "history": json.dumps(self.history),
                "rng": self._rng_state(),
            }
            save_checkpoint(payload, path)
            self._last_good = path
        self.barrier()
        return path

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The saved state when resuming (RNG streams and history restored), else ``None``."""
        path = self.checkpoint_path
        if not self.resume or path is None:
            return None
        # rank 0 reads and broadcasts, so nodes without a shared file system resume too
        state = load_checkpoint(path, map_location="cpu") if self.is_main else None
        if self.distributed:
            state = self.broadcast_object(state)
        assert state is not None
        meta = state.pop("_nas", None)
        if meta is None:
            raise CheckpointError(f"'{path}' was not written by a nas run (no '_nas' section)")
        if meta.get("fingerprint") != self.fingerprint():
            raise CheckpointError(
                f"'{path}' belongs to a run with a different configuration (fingerprint {meta.get('fingerprint')} "
                f"!= {self.fingerprint()}); resume with the same options, or start a new run directory"
            )
        self.history = json.loads(meta.get("history") or "[]")
        if self.run_dir is not None and self.is_main:
            atomic_write_text(self.run_dir / HISTORY_NAME, "".join(json.dumps(r) + "\n" for r in self.history))
        self._restore_rng_state(meta.get("rng") or {})
        return state

    def __repr__(self) -> str:
        return (
            f"RunContext(device={self.device}, precision={self.precision}, seed={self.seed}, "
            f"rank={self.rank}/{self.world_size}, run_dir={self.run_dir})"
        )
