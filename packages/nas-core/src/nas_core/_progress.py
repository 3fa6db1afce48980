"""Progress a log can show: one line per epoch or generation (metrics, time, ETA) when progress bars cannot
show (no terminal: logs, CI, nohup, cluster jobs), and the choice between bars and lines.

``progress`` of a run: ``None`` (default) draws bars on a terminal and prints lines otherwise; ``True`` always
draws bars; ``"lines"`` always prints lines; ``False`` prints neither.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Mapping, TextIO

from ._errors import ConfigError

__all__ = ["PROGRESS_MODES", "check_progress", "wants_bars", "wants_lines", "EpochLines", "fmt_duration"]

PROGRESS_MODES = (None, True, False, "lines")

#: metric names shown first (substrings), then the others in their order
_FIRST = ("loss", "fitness", "acc")
_SKIP = {"epoch", "generation", "phase", "step", "kind"}


def check_progress(progress: Any) -> Any:
    if progress not in PROGRESS_MODES or (progress is not None and not isinstance(progress, (bool, str))):
        raise ConfigError(
            f"progress: expected None (bars on a terminal, else one line per epoch), True (bars), 'lines' or "
            f"False (nothing), got {progress!r}"
        )
    return progress


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def wants_bars(progress: Any) -> bool | None:
    """Whether to draw bars; ``None`` lets tqdm decide (bars on a terminal only)."""
    if progress is True:
        return True
    if progress in (False, "lines"):
        return False
    return None


def wants_lines(progress: Any, stream: TextIO | None = None) -> bool:
    if progress == "lines":
        return True
    return progress is None and not _isatty(stream or sys.stderr)


def fmt_duration(seconds: float) -> str:
    """``4.2 s``, ``3m05s``, ``1h02m``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _fmt(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class EpochLines:
    """Formats and prints one line per epoch/generation: index out of the expected total, the main metrics,
    the epoch's duration and the ETA of its phase.

    :param stream: where lines go (default ``sys.stderr`` at print time).
    :param prefix: the start of every line.
    """

    def __init__(self, stream: TextIO | None = None, prefix: str = "nas"):
        self.stream = stream
        self.prefix = prefix
        self.plan: dict[str, int] = {}
        self._last = time.perf_counter()
        self._durations: dict[str, list[float]] = {}

    def expect(self, total: int, phase: str = "") -> None:
        """The number of epochs (or generations) phase ``phase`` will report (for the ETA)."""
        if total and total > 0:
            self.plan[phase] = int(total)

    def restart_clock(self) -> None:
        self._last = time.perf_counter()

    def line(self, epoch: int, metrics: Mapping[str, Any]) -> str:
        now = time.perf_counter()
        took, self._last = now - self._last, now
        phase = str(metrics.get("phase") or "")
        durations = self._durations.setdefault(phase, [])
        durations.append(took)
        unit = "generation" if "generation" in metrics else "epoch"
        index = int(metrics.get("generation", epoch))
        total = self.plan.get(phase) or (self.plan.get("") if phase in ("", "train") else None)
        where = f"{phase} {unit}" if phase else unit
        head = f"{where} {index + 1}/{total}" if total else f"{where} {index + 1}"
        shown = [(k, v) for k, v in metrics.items()
                 if k not in _SKIP and isinstance(v, (int, float)) and not isinstance(v, bool)]
        shown.sort(key=lambda kv: next((i for i, w in enumerate(_FIRST) if w in kv[0]), len(_FIRST)))
        values = "  ".join(f"{k} {_fmt(v)}" for k, v in shown[:5])
        timing = f"{fmt_duration(took)}"
        if total:
            left = total - (index + 1)
            recent = durations[-5:]
            if left > 0:
                timing += f", ETA {fmt_duration(left * sum(recent) / len(recent))}"
        return f"{self.prefix}: {head}" + (f"  {values}" if values else "") + f"  ({timing})"

    def report(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        print(self.line(epoch, metrics), file=self.stream or sys.stderr, flush=True)
