"""How many CPU threads torch uses, and how idle threads wait.

Measured on the project's 2-core machine (shared, torch 2.14.1, libgomp; training steps of the quickstart's
nb201 supernet and of a C=16 one with MIM):

* idle machine: 2 threads are 1.6-1.7x faster than 1, even for the quickstart's tiny supernet, so a tiny model
  does not get fewer threads;
* one core busy with another process: 2 threads with OpenMP's default (active, spinning) wait take 10-30x
  longer per step than 1 thread (3.5-9 s instead of 0.3 s), because a spinning thread waits for a core that the
  other process holds; with the passive wait policy the same 2 threads cost 1.3-2x of 1 thread. Float64 synflow
  on a DARTS network (C=16, 8 cells) at load 9: 36 s with 2 spinning threads, 0.31 s with 2 passive ones, 0.22 s
  with 1 thread.

Hence the defaults: idle threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, set before torch
loads its OpenMP runtime unless the user set it), and a run uses as many threads as there are CPUs it may use
(affinity, cgroup quota, shared among the ranks of one node) that other processes leave idle (1-minute load
average), at least one. ``threads=N`` (``--threads N``) overrides that; a run that asks for more threads than
the machine has idle CPUs gets a warning, as does an automatic choice on an oversubscribed machine.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from ._errors import ConfigError

__all__ = ["ThreadPlan", "usable_cpus", "choose_threads", "apply_threads", "prefer_passive_wait"]

#: a CPU counts as idle when less than this share of it is used by other processes
_SPARE = 0.75


def prefer_passive_wait() -> None:
    """Make idle OpenMP threads sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose.

    It takes effect only before torch is imported (OpenMP reads it once, when it loads); child processes
    (data-loader workers, torchrun ranks) inherit it.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs allowed by the cgroup's CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``); None when unlimited."""
    candidates: list[tuple[Path, Path | None]] = []
    try:
        for line in proc.read_text().splitlines():
            hid, controllers, path = line.split(":", 2)
            rel = path.lstrip("/")
            if hid == "0":
                candidates.append((root / rel / "cpu.max", None))
            elif "cpu" in controllers.split(","):
                for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                    base = root / mount / rel
                    candidates.append((base / "cpu.cfs_quota_us", base / "cpu.cfs_period_us"))
    except (OSError, ValueError):
        pass
    candidates += [(root / "cpu.max", None), (root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us")]
    for quota_file, period_file in candidates:
        try:
            if period_file is None:
                quota, period = quota_file.read_text().split()[:2]
            else:
                quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
        except (OSError, ValueError):
            continue
        if quota in ("max", "-1"):
            return None
        try:
            return max(0.01, int(quota) / int(period))
        except (ValueError, ZeroDivisionError):
            continue
    return None


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by the cgroup quota, shared among the ranks
    torchrun started on this node (``LOCAL_WORLD_SIZE``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota + 0.5)))
    try:
        n //= max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        pass
    return max(1, n)


def _load() -> float | None:
    """The machine's 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None


@dataclass(frozen=True)
class ThreadPlan:
    """The thread count a run uses, why, and a warning when the machine is oversubscribed."""

    threads: int
    reason: str
    warning: str | None = None


def choose_threads(requested: int | str | None = "auto", *, current: int | None = None) -> ThreadPlan:
    """The thread count for ``requested`` (``"auto"``, ``None`` or a positive int), without applying it.

    ``"auto"`` (and ``None``): the usable CPUs that are idle, at least 1, never more than ``current`` (the
    count torch had before nas changed it, which honours ``OMP_NUM_THREADS`` and ``torch.set_num_threads``).
    """
    usable = usable_cpus()
    load = _load()
    # CPUs of the machine that other processes leave idle
    idle = None if load is None else max(0.0, (os.cpu_count() or 1) - load)
    busy = f"load {load:.1f} on {os.cpu_count()} CPUs"
    if requested not in (None, "auto"):
        try:
            n = int(requested)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            n = 0
        if n < 1 or isinstance(requested, bool):
            raise ConfigError(f"threads: expected a positive integer or 'auto', got {requested!r}")
        warning = None
        if idle is not None and n > idle + _SPARE:
            warning = (
                f"{n} threads asked for, but only {idle:.1f} CPUs are idle ({busy}): with more threads than idle "
                f"CPUs each step can take many times longer; use --threads {max(1, math.floor(idle + _SPARE))} "
                f"or --threads auto"
            )
        return ThreadPlan(n, "asked for", warning)
    if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit() and current is not None:
        return ThreadPlan(max(1, current), "OMP_NUM_THREADS")
    cap = usable if current is None else max(1, min(usable, current))
    if idle is None:
        return ThreadPlan(cap, f"{usable} usable CPUs")
    n = max(1, min(cap, math.floor(idle + _SPARE)))
    warning = None
    if idle + _SPARE < 1:
        warning = (
            f"the machine is oversubscribed ({busy}, {usable} usable by this process): the run uses {n} thread"
            f"{'s' if n > 1 else ''} and will be slower than on an idle machine"
        )
    return ThreadPlan(n, f"{usable} usable CPUs, {idle:.1f} idle", warning)


_baseline: int | None = None
_last_set: int | None = None


def apply_threads(requested: int | str | None = "auto", *, warn: bool = True) -> ThreadPlan:
    """Choose (see :func:`choose_threads`) and set torch's intra-op thread count; warn when oversubscribed."""
    global _baseline, _last_set
    import torch

    now = torch.get_num_threads()
    if _baseline is None or now != _last_set:  # first call, or the user changed it since
        _baseline = now
    plan = choose_threads(requested, current=_baseline)
    if plan.threads != now:
        torch.set_num_threads(plan.threads)
    _last_set = plan.threads
    if warn and plan.warning:
        warnings.warn(f"nas: warning: {plan.warning}", RuntimeWarning, stacklevel=3)
    return plan


def describe(plan: ThreadPlan) -> str:
    """One line for logs: the threads a run uses, why, and how idle threads wait."""
    return (f"{plan.threads} CPU thread{'s' if plan.threads > 1 else ''} ({plan.reason}; "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
