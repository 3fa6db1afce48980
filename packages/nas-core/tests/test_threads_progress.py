"""The thread policy (usable idle CPUs, warnings when oversubscribed) and the progress lines a log shows."""

from __future__ import annotations

import io
import os

import pytest

import nas_core
from nas_core import ConfigError
from nas_core import _threads
from nas_core._progress import EpochLines, fmt_duration

CGROUP_QUOTA = _threads._cgroup_quota  # the real one (the machine fixture replaces it)


@pytest.fixture
def machine(monkeypatch):
    """Pretend to run on ``cpus`` CPUs with a 1-minute load average ``load`` and no OMP_NUM_THREADS."""

    def set_machine(cpus: int, load: float, *, quota: float | None = None) -> None:
        monkeypatch.setattr(os, "cpu_count", lambda: cpus)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
        monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
        monkeypatch.setattr(_threads, "_cgroup_quota", lambda: quota)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)

    return set_machine


def test_auto_uses_every_usable_cpu_of_an_idle_machine(machine):
    machine(8, 0.3)
    plan = _threads.choose_threads("auto")
    assert plan.threads == 8 and plan.warning is None
    assert _threads.choose_threads("auto", current=4).threads == 4  # never more than torch had (OMP_NUM_THREADS, set_num_threads)


def test_auto_leaves_the_cpus_other_processes_hold(machine):
    machine(8, 5.0)
    assert _threads.choose_threads().threads == 3
    machine(2, 1.0)  # one of two cores busy: one thread (two spinning threads made steps 10-30x slower)
    assert _threads.choose_threads().threads == 1


def test_an_oversubscribed_machine_gets_one_thread_and_a_warning(machine):
    machine(2, 4.8)
    plan = _threads.choose_threads()
    assert plan.threads == 1
    assert "oversubscribed" in plan.warning and "load 4.8 on 2 CPUs" in plan.warning


def test_asking_for_more_threads_than_idle_cpus_warns_and_names_the_fix(machine):
    machine(4, 3.5)
    plan = _threads.choose_threads(4)
    assert plan.threads == 4 and "--threads 1" in plan.warning
    machine(4, 0.0)
    assert _threads.choose_threads("3").warning is None


def test_cgroup_quota_and_ranks_per_node_cap_the_usable_cpus(machine, monkeypatch, tmp_path):
    machine(16, 0.0, quota=2.5)
    assert _threads.usable_cpus() == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert _threads.usable_cpus() == 1
    # the files: cgroup v2 cpu.max, v1 cfs quota/period, "max" for unlimited
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job\n")
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "cpu.max").write_text("150000 100000\n")
    assert CGROUP_QUOTA(tmp_path, proc) == pytest.approx(1.5)
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert CGROUP_QUOTA(tmp_path, proc) is None
    proc.write_text("3:cpu,cpuacct:/\n")
    (tmp_path / "cpu,cpuacct").mkdir()
    (tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    assert CGROUP_QUOTA(tmp_path, proc) == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [0, -2, "many", True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ConfigError, match="threads"):
        _threads.choose_threads(bad)


def test_apply_threads_sets_torch_and_restores_the_users_choice(machine, monkeypatch):
    import torch

    monkeypatch.setattr(_threads, "_baseline", None)
    before = torch.get_num_threads()
    try:
        machine(2, 0.0)
        torch.set_num_threads(1)
        assert nas_core.apply_threads(2).threads == 2 and torch.get_num_threads() == 2
        assert nas_core.apply_threads("auto").threads == 1  # capped by what the user had set (1)
    finally:
        torch.set_num_threads(before)


def test_the_passive_wait_policy_is_set_before_torch_loads():
    assert os.environ.get("OMP_WAIT_POLICY") is not None  # nas_core's import set it (or the user did)


# -- progress lines ----------------------------------------------------------------------------------


def test_epoch_lines_show_index_of_total_metrics_time_and_eta():
    lines = EpochLines(stream=io.StringIO())
    lines.expect(20)
    text = lines.line(2, {"train_loss": 0.51234, "val_loss": 0.49, "lr": 0.01, "arch": "|x|"})
    assert text.startswith("nas: epoch 3/20  train_loss 0.5123  val_loss 0.49")
    assert "ETA" in text and "|x|" not in text
    last = lines.line(19, {"train_loss": 0.1})
    assert "epoch 20/20" in last and "ETA" not in last


def test_epoch_lines_follow_phases_and_generations():
    lines = EpochLines()
    lines.expect(5, "train")
    lines.expect(10, "search")
    assert "train epoch 2/5" in lines.line(1, {"phase": "train", "loss": 1.0})
    text = lines.line(6, {"phase": "search", "generation": 1, "best_fitness": -0.5, "evaluated": 40})
    assert "search generation 2/10" in text and "best_fitness -0.5" in text and "evaluated 40" in text
    assert "autoencoder epoch 1 " in lines.line(0, {"phase": "autoencoder", "loss": 2.0}) + " "  # no total known


def test_durations_read_for_people():
    assert fmt_duration(4.21) == "4.2 s" and fmt_duration(185) == "3m05s" and fmt_duration(3720) == "1h02m"


def test_a_run_without_a_terminal_prints_one_line_per_epoch(tmp_path, capsys):
    from nas_core import RunContext

    ctx = RunContext(device="cpu", run_dir=tmp_path / "run", progress=None, distributed=False)  # stderr: not a TTY here
    ctx.expect_epochs(2)
    ctx.start()
    ctx.log_epoch(0, {"train_loss": 1.5})
    ctx.log_epoch(1, {"train_loss": 1.25})
    err = capsys.readouterr().err
    assert "nas: starting on cpu" in err and str(tmp_path / "run") in err
    assert "nas: epoch 1/2  train_loss 1.5" in err and "nas: epoch 2/2  train_loss 1.25" in err


@pytest.mark.parametrize("progress, printed", [(False, False), (True, False), ("lines", True)])
def test_progress_modes(tmp_path, capsys, progress, printed):
    from nas_core import RunContext

    ctx = RunContext(device="cpu", progress=progress, distributed=False)
    ctx.start()
    ctx.log_epoch(0, {"train_loss": 1.0})
    assert ("epoch 1" in capsys.readouterr().err) is printed


def test_a_bad_progress_value_is_refused():
    from nas_core import RunContext

    with pytest.raises(ConfigError, match="progress"):
        RunContext(device="cpu", progress="yes", distributed=False)
