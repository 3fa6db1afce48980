"""Run directories that cannot be clobbered: the lock, foreign and leftover directories, symbolic links, damaged
JSON files, and SIGTERM/Ctrl-C, on the nas_core.testing fakes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import nas_core
from nas_core import ConfigError, RunContext, SearchResult, hookimpl, load_checkpoint
from nas_core import _rundir
from nas_core._rundir import LOCK_NAME, RunDirLocked, RunLock, append_line
from nas_core.cli import main
from nas_core.testing import FakePlugin

FAKE = ["--space", "fake", "--objective", "fake", "--strategy", "fake", "--data", "digits", "--limit", "32",
        "--img-size", "16", "--no-progress"]


@pytest.fixture
def fakes(register_plugin):
    register_plugin(FakePlugin(), "fake")


def ctx(run_dir, **kw):
    return RunContext(device="cpu", run_dir=run_dir, progress=False, distributed=False, **kw)


def cli(capsys, *argv):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return rc, out, err


# -- the lock -----------------------------------------------------------------------------------------------
def test_a_second_context_on_a_locked_directory_is_refused_naming_the_holder(tmp_path):
    rd = tmp_path / "run"
    first = ctx(rd)
    assert (rd / LOCK_NAME).exists() and json.loads((rd / LOCK_NAME).read_text())["pid"] == os.getpid()
    with pytest.raises(RunDirLocked, match=rf"is in use by another nas run: pid {os.getpid()} .*this process"):
        ctx(rd)
    first.close()
    assert not (rd / LOCK_NAME).exists(), "the lock file goes with the lock"
    with ctx(rd) as again:  # free again once released
        assert again._lock.held
    assert not (rd / LOCK_NAME).exists()


def test_finish_and_failure_release_the_lock(fakes, tmp_path):
    from nas_core.testing import FakeObjective, FakeSpace, FakeStrategy, fake_images

    data = nas_core.TensorImages(fake_images(16, 16))
    c = ctx(tmp_path / "a", config={"b": 2})
    FakeStrategy(budget=2).run(FakeSpace(), FakeObjective(), data, c)
    assert not c._lock.held

    class Boom:
        @hookimpl
        def nas_candidate_evaluated(self, arch, scores):
            raise RuntimeError("boom")

    pm = nas_core.NasPluginManager(autoload=False)
    pm.register_plugin(Boom(), "boom")
    c = ctx(tmp_path / "b", plugin_manager=pm)
    with pytest.raises(RuntimeError):
        FakeStrategy(budget=2).run(FakeSpace(), FakeObjective(), data, c)
    assert not c._lock.held and not (tmp_path / "b" / LOCK_NAME).exists()


def test_a_stale_lock_of_a_killed_process_is_taken_over_and_named(tmp_path):
    rd = tmp_path / "run"
    rd.mkdir()
    code = ("import os, signal, sys; from pathlib import Path; from nas_core._rundir import RunLock; "
            "RunLock(Path(sys.argv[1])).acquire(); print(os.getpid(), flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    r = subprocess.run([sys.executable, "-c", code, str(rd)], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL
    dead = int(r.stdout.split()[0])
    assert json.loads((rd / LOCK_NAME).read_text())["pid"] == dead, "a killed holder leaves its lock file"
    lock = RunLock(rd)
    lock.acquire()
    assert lock.stale["pid"] == dead and json.loads((rd / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()


def test_pid_file_lock_without_flock_detects_live_and_stale_holders(tmp_path, monkeypatch):
    monkeypatch.setattr(_rundir, "fcntl", None)  # a file system / platform without flock
    rd = tmp_path / "run"
    rd.mkdir()
    holder = RunLock(rd)
    holder.acquire()
    with pytest.raises(RunDirLocked, match=f"pid {os.getpid()}"):
        RunLock(rd).acquire()
    holder.release()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(child.stdout)
    (rd / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    lock = RunLock(rd)
    lock.acquire()
    assert lock.stale["pid"] == dead
    lock.release()


# -- foreign, leftover and unusable directories -------------------------------------------------------------
def test_foreign_leftover_and_unusable_directories_are_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"'.*other' is not empty \(notes.txt\)"):
        ctx(other)
    assert (other / "notes.txt").read_text() == "mine" and sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    left = tmp_path / "left"
    left.mkdir()
    (left / "config.json").write_text("{}")
    (left / "history.jsonl").write_text('{"kind": "epoch", "epoch": 0}\n')
    with pytest.raises(ConfigError, match=r"leftovers of a run .*config.json, history.jsonl"):
        ctx(left)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        ctx(tmp_path / "file")
    with pytest.raises(ConfigError, match=r"cannot be created: '.*file' is a file"):
        ctx(tmp_path / "file" / "sub")
    for empty in ("", "  "):
        with pytest.raises(ConfigError, match="run_dir: the value is empty"):
            ctx(empty)
    with ctx(tmp_path / "fresh"):  # new and empty directories are fine
        pass
    (tmp_path / "empty").mkdir()
    with ctx(tmp_path / "empty"):
        pass


def test_resuming_a_train_output_with_nas_search_is_refused(capsys, tmp_path):
    rd = tmp_path / "train"
    rd.mkdir()
    (rd / "config.json").write_text(json.dumps({"arch": "x", "space": {"channels": 4}, "epochs": 2}))
    (rd / "checkpoint.pt").write_bytes(b"")
    rc, _, err = cli(capsys, "search", "--resume", rd)
    assert rc == 2 and "names no space and strategy" in err and "nas train ... --resume" in err


# -- symbolic links -----------------------------------------------------------------------------------------
def test_symbolic_links_in_a_run_directory_are_never_followed(fakes, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    rd = tmp_path / "run"
    res = nas_core.search(space="fake", objective="fake", strategy="fake", data="digits", limit=16, img_size=16, budget=2,
                          run_dir=rd, progress=False)
    # a link planted in a finished run: resuming, showing or appending history must not write through it
    (rd / "history.jsonl").unlink()
    (rd / "history.jsonl").symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link 'history.jsonl'"):
        ctx(rd, resume=True, config={})
    (rd / "cells.png").unlink()
    (rd / "cells.png").symlink_to(victim)
    rc, _, err = cli(capsys, "show", rd)
    assert rc == 2 and "symbolic link" in err
    (rd / "history.jsonl").unlink()
    (rd / "cells.png").unlink()
    (rd / "tensorboard").mkdir()
    (rd / "tensorboard" / "events.out").symlink_to(victim)  # deeper links count too
    with pytest.raises(ConfigError, match="symbolic link 'tensorboard/events.out'"):
        ctx(rd, resume=True, config={})
    (rd / "history.jsonl").symlink_to(victim)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        append_line(rd / "history.jsonl", "{}\n")
    # atomic writes replace a planted link instead of following it
    res.save(rd / "cells.png")
    assert not (rd / "cells.png").is_symlink() and victim.read_text() == "precious\n"
    # a link planted in a running directory is caught when the history is appended
    with ctx(tmp_path / "live") as live:
        live.start()
        (tmp_path / "live" / "history.jsonl").symlink_to(victim)
        with pytest.raises(ConfigError, match="is a symbolic link"):
            live.log_epoch(0, {"loss": 1.0})
    with pytest.raises(ConfigError, match=r"\.nas\.lock"):
        (tmp_path / "l2").mkdir()
        (tmp_path / "l2" / LOCK_NAME).symlink_to(victim)
        RunLock(tmp_path / "l2").acquire()
    assert victim.read_text() == "precious\n"


# -- damaged JSON files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ['{"best": ', "[1, 2]", "\xff\xfe\x00", ""])
def test_damaged_config_and_result_files_are_named(fakes, tmp_path, capsys, content):
    rd = tmp_path / "run"
    nas_core.search(space="fake", objective="fake", strategy="fake", data="digits", limit=16, img_size=16, budget=2,
                    run_dir=rd, progress=False)
    (rd / "result.json").write_bytes(content.encode("latin-1"))
    for argv in (["show", rd], ["train", rd, "--epochs", "1"]):
        rc, _, err = cli(capsys, *argv)
        assert rc == 2 and f"'{rd / 'result.json'}'" in err and ("damaged" in err or "cannot be read" in err), err
    with pytest.raises(ConfigError, match="result.json"):
        SearchResult.load(rd)
    (rd / "config.json").write_bytes(content.encode("latin-1"))
    rc, _, err = cli(capsys, "search", "--resume", rd)
    assert rc == 2 and f"'{rd / 'config.json'}'" in err
    with pytest.raises(ConfigError, match="config.json"):  # the Python API resumes through the same check
        ctx(rd, resume=True)


def test_a_result_without_its_fields_is_named(tmp_path, capsys):
    rd = tmp_path / "run"
    rd.mkdir()
    (rd / "result.json").write_text(json.dumps({"space": "nb201"}))
    rc, _, err = cli(capsys, "show", rd)
    assert rc == 2 and "lacks 'best'" in err and "result.json" in err


# -- interruptions ----------------------------------------------------------------------------------------
def test_ctrl_c_fires_the_failure_hook_and_says_how_to_resume(register_plugin, tmp_path, capsys):
    failed, seen = [], []

    class Stop:
        @hookimpl
        def nas_candidate_evaluated(self, arch, scores):
            seen.append(arch)
            if len(seen) == 2:  # after the first checkpoint
                raise KeyboardInterrupt

        @hookimpl
        def nas_run_failed(self, error):
            failed.append(type(error).__name__)

    register_plugin(FakePlugin(), "fake")
    register_plugin(Stop(), "stop")
    rd = tmp_path / "run"
    rc, _, err = cli(capsys, "search", *FAKE, "--set", "budget=3", "--run-dir", rd)
    assert rc == 130 and failed == ["KeyboardInterrupt"]
    assert "interrupted by Ctrl-C (SIGINT)" in err and f"continue with: nas search --resume {rd}" in err
    assert not (rd / LOCK_NAME).exists()


@pytest.fixture
def probe_env(tmp_path):
    """A subprocess environment with the fakes and a probe plugin (holds the run when asked, records failures)
    installed through entry points, as third-party plugins are."""
    site = tmp_path / "site"
    for dist, ep in (("nas_fake", "fake = nas_core.testing:FAKE_PLUGIN"), ("nas_probe", "probe = nas_probe")):
        info = site / f"{dist}-0.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 0.0\n")
        (info / "entry_points.txt").write_text(f"[nas]\n{ep}\n")
    (site / "nas_probe.py").write_text(textwrap.dedent("""
        import os, time
        from nas_core import hookimpl

        seen = []

        @hookimpl
        def nas_candidate_evaluated(arch, scores):
            seen.append(arch)
            while os.environ.get("PROBE_HOLD") and len(seen) > 1:  # hold the run after its first checkpoint
                time.sleep(0.05)

        @hookimpl
        def nas_run_failed(error):
            with open(os.environ["PROBE_OUT"], "a") as fh:
                fh.write(type(error).__name__ + "\\n")
    """))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "PROBE_OUT": str(tmp_path / "probe.txt"),
            "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_concurrent_run_is_refused_and_sigterm_stops_cleanly_then_resumes(fakes, probe_env, tmp_path):
    rd = tmp_path / "run"
    args = [sys.executable, "-m", "nas_core.cli", "search", *FAKE, "--set", "budget=24", "--run-dir", str(rd)]
    first = subprocess.Popen(args, env={**probe_env, "PROBE_HOLD": "1"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (rd / "checkpoint.pt").exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the run never saved a checkpoint"
            time.sleep(0.1)
        # a second process on the same directory, while the first runs: refused, naming the first
        second = subprocess.run([sys.executable, "-m", "nas_core.cli", "search", "--resume", str(rd), "--no-progress"],
                                env=probe_env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        assert f"is in use by another nas run: pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, err
    assert "interrupted by SIGTERM" in err and f"continue with: nas search --resume {rd}" in err and "Traceback" not in err
    assert (tmp_path / "probe.txt").read_text().split() == ["Terminated"], "nas_run_failed fires on SIGTERM"
    kept = load_checkpoint(rd / "checkpoint.pt")  # whole, loadable with weights_only
    assert len(kept["done"]) == 1 and not (rd / "result.json").exists() and not (rd / LOCK_NAME).exists()

    resumed = subprocess.run([sys.executable, "-m", "nas_core.cli", "search", "--resume", str(rd), "--no-progress"],
                             env=probe_env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    whole = nas_core.search(space="fake", objective="fake", strategy="fake", data="digits", limit=32, img_size=16,
                            budget=24, progress=False)
    saved = json.loads((rd / "result.json").read_text())
    assert [c["arch"] for c in saved["candidates"]] == [str(c.arch) for c in whole.candidates]
    assert [c["scores"]["fitness"] for c in saved["candidates"]] == pytest.approx([c.fitness for c in whole.candidates], abs=1e-6)
