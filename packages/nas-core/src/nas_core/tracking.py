"""Experiment tracking as plugins on the run lifecycle hooks.

``nas_core.search(..., trackers=["tensorboard"])`` (``nas search --track tensorboard``) registers a tracker for the
run; any object with ``nas_*`` hookimpls can be registered the same way with :func:`nas_core.register_plugin`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from ._errors import ConfigError
from ._markers import hookimpl

__all__ = ["TensorBoardTracker", "create_tracker", "TRACKERS"]


class TensorBoardTracker:
    """Writes step and epoch metrics, candidate fitness and the final result to TensorBoard event files in
    ``<run_dir>/tensorboard`` (or ``log_dir``). Needs ``pip install tensorboard`` (``nas-core[tensorboard]``)."""

    def __init__(self, log_dir: str | Path | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                "the tensorboard tracker needs the tensorboard package: pip install 'nas-core[tensorboard]'"
            ) from exc
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.writer: Any = None
        self._candidates = 0

    def _open(self, context: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if self.writer is None and context.is_main:
            log_dir = self.log_dir or (Path(context.run_dir) / "tensorboard" if context.run_dir else Path("runs/tensorboard"))
            self.writer = SummaryWriter(log_dir=str(log_dir))
            self.log_dir = log_dir

    @hookimpl
    def nas_run_start(self, context: Any) -> None:
        self._open(context)
        if self.writer is not None:
            self.writer.add_text("config", f"```\n{context.config}\n```")

    @hookimpl
    def nas_step_end(self, context: Any, step: int, metrics: Mapping[str, float]) -> None:
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"step/{k}", float(v), step)

    @hookimpl
    def nas_epoch_end(self, context: Any, epoch: int, metrics: Mapping[str, Any]) -> None:
        if self.writer is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.writer.add_scalar(f"epoch/{k}", float(v), epoch)
            self.writer.flush()

    @hookimpl
    def nas_candidate_evaluated(self, context: Any, arch: Any, scores: Mapping[str, float]) -> None:
        if self.writer is not None:
            for k, v in scores.items():
                self.writer.add_scalar(f"candidate/{k}", float(v), self._candidates)
            self._candidates += 1

    @hookimpl
    def nas_run_end(self, context: Any, result: Any) -> None:
        if self.writer is not None:
            best = getattr(result, "best", None)
            if best is not None:
                self.writer.add_text("best", str(best))
            self.writer.close()
            self.writer = None

    @hookimpl
    def nas_run_failed(self, context: Any, error: BaseException) -> None:
        if self.writer is not None:
            self.writer.add_text("error", f"{type(error).__name__}: {error}")
            self.writer.close()
            self.writer = None


TRACKERS: dict[str, Callable[[Any], Any]] = {"tensorboard": lambda context: TensorBoardTracker()}


def create_tracker(name: str, context: Any = None) -> Any:
    key = name.strip().lower()
    if key not in TRACKERS:
        raise ConfigError(f"unknown tracker '{name}' (available: {', '.join(TRACKERS)})")
    return TRACKERS[key](context)
