"""torchrun with 2 CPU processes (gloo), end to end through nas_core.search and the nas command line:
DARTS and one-shot supernet training run data-parallel, the population is evaluated sharded, and both ranks
end with identical architecture parameters and result. (Equality with a single process on the same global
batch holds where the maths says so - no batch statistics, same random draws - and is tested with the toy
supernet in packages/nas-strategies/tests/test_distributed.py; here the nb201 supernet normalises with
per-rank batch statistics and each rank draws its own masks, so only rank agreement is exact.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def _torchrun(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_two_ranks_end_identical_through_search(tmp_path):
    r = _torchrun(str(HERE / "helpers" / "ddp_search.py"), str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == 2
    assert r0 == r1, "ranks disagree"
    darts = r0["darts_mim_nb201"]
    assert darts["arch_weights"]["cell"] and len(darts["history"]) >= 2
    evo = r0["evolution_rotation_vit"]
    assert len(evo["candidates"]) >= 4
    # only rank 0 writes the run directory
    saved = json.loads((tmp_path / "darts_mim_nb201" / "result.json").read_text())
    assert saved["best"] == darts["best"]


@pytest.mark.slow
def test_the_command_line_runs_under_torchrun(tmp_path):
    rd = tmp_path / "run"
    r = _torchrun("-m", "nas_core.cli", "search", "--space", "nb201", "--objective", "rotation", "--strategy", "darts",
                  "--data", "digits", "--limit", "32", "--set", "space.channels=4", "--set", "space.num_cells=1",
                  "--set", "strategy.epochs=2", "--set", "strategy.batch_size=4", "--set", "strategy.steps_per_epoch=2",
                  "--run-dir", str(rd), "--no-progress")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("nas search finished") == 1  # only rank 0 prints the summary
    saved = json.loads((rd / "result.json").read_text())
    assert saved["strategy"] == "darts" and saved["objective"] == "rotation"
    assert sorted(p.name for p in rd.iterdir() if p.suffix == ".json") == ["config.json", "result.json"]
