"""A search killed mid-run (SIGKILL of the `nas search` process) and resumed with `nas search --resume` ends with
the same result as an uninterrupted run; the checkpoint left behind by the kill is always loadable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nas_core import load_checkpoint


def _args(rd: Path, strategy: str, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "nas_core.cli", "search", "--space", "nb201", "--objective", "mim", "--strategy", strategy,
            "--data", "digits", "--limit", "48", "--set", "space.channels=4", "--set", "space.num_cells=1",
            *extra, "--run-dir", str(rd), "--no-progress"]


def _epochs_done(rd: Path) -> int:
    path = rd / "history.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if '"kind": "epoch"' in line)


CASES = {
    "darts": ["--set", "strategy.epochs=10", "--set", "strategy.batch_size=4", "--set", "strategy.steps_per_epoch=3"],
    "evolution": ["--set", "strategy.train_epochs=4", "--set", "strategy.batch_size=4", "--set", "strategy.steps_per_epoch=3",
                  "--set", "strategy.population=6", "--set", "strategy.generations=4", "--set", "strategy.parents=2",
                  "--set", "strategy.eval_batches=1", "--set", "strategy.calib_batches=1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", sorted(CASES))
def test_killed_search_resumes_to_the_uninterrupted_result(strategy, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    r = subprocess.run(_args(full, strategy, CASES[strategy]), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    total = _epochs_done(full)
    assert total >= 4

    proc = subprocess.Popen(_args(cut, strategy, CASES[strategy]), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while _epochs_done(cut) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; give it more epochs"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "result.json").exists()
    done_at_kill = _epochs_done(cut)
    assert 2 <= done_at_kill < total
    state = load_checkpoint(cut / "checkpoint.pt")  # never half-written, whatever moment the kill hit
    assert "_nas" in state
    # a kill in the middle of a save may leave that save's temporary file (never the checkpoint half-written)

    r = subprocess.run([sys.executable, "-m", "nas_core.cli", "search", "--resume", str(cut), "--no-progress"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not [p.name for p in cut.iterdir() if p.name.endswith(".tmp")], "the resume left a temporary file behind"
    a = json.loads((full / "result.json").read_text())
    b = json.loads((cut / "result.json").read_text())
    assert b["best"] == a["best"]
    assert [c["arch"] for c in b["candidates"]] == [c["arch"] for c in a["candidates"]]
    if a.get("arch_weights"):
        for cell in a["arch_weights"]:
            assert np.allclose(a["arch_weights"][cell], b["arch_weights"][cell], atol=1e-6), cell
    assert len(b["history"]) == len(a["history"])
    for ha, hb in zip(a["history"], b["history"]):
        for k, v in ha.items():
            if isinstance(v, float):
                assert hb[k] == pytest.approx(v, rel=1e-5, abs=1e-7), (k, ha, hb)
