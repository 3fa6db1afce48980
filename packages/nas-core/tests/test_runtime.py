"""Runtime: devices, precision, seeding, checkpoints, run directories, resume, NaN stops, torchrun."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import nas_core
from nas_core import (
    CheckpointError,
    ConfigError,
    NonFiniteError,
    RunContext,
    hookimpl,
    load_checkpoint,
    save_checkpoint,
    select_device,
)
from nas_core.testing import FakeObjective, FakeSpace, FakeStrategy, fake_images


def ctx(**kw) -> RunContext:
    kw.setdefault("device", "cpu")
    return RunContext(progress=False, distributed=False, **kw)


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="sees no GPU"):
            select_device("cuda")
    with pytest.raises(ConfigError, match="not a torch device"):
        select_device("gpu0")


def test_bf16_autocast_on_cpu():
    c = ctx(precision="bf16")
    with c.autocast():
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16
    with ctx().autocast():
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32
    with pytest.raises(ConfigError, match="fp16"):
        ctx(precision="fp16")


def test_seeded_streams_are_stable_and_independent():
    a, b = ctx(seed=3), ctx(seed=3)
    assert a.rng("x").integers(1 << 30) == b.rng("x").integers(1 << 30)
    assert ctx(seed=3).rng("x").integers(1 << 30) != ctx(seed=3).rng("y").integers(1 << 30)
    assert ctx(seed=4).rng("x").integers(1 << 30) != ctx(seed=3).rng("x").integers(1 << 30)
    with pytest.raises(ConfigError, match="seed"):
        ctx(seed="3")


class Evil:
    """An arbitrary Python object: weights_only loading must refuse it."""


def test_checkpoints_are_atomic_and_safe(tmp_path):
    p = tmp_path / "ck.pt"
    save_checkpoint({"w": torch.arange(3), "step": 2, "rng": np.random.default_rng(0).bit_generator.state}, p)
    st = load_checkpoint(p)
    assert torch.equal(st["w"], torch.arange(3)) and st["step"] == 2
    # a failure while writing leaves the previous checkpoint intact and no temp file behind
    from nas_core import _io

    def boom(fh):
        fh.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        _io.atomic_write(p, boom)
    assert load_checkpoint(p)["step"] == 2
    assert [f.name for f in tmp_path.iterdir()] == ["ck.pt"]
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_checkpoint(tmp_path / "bad.pt")

    torch.save({"obj": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_checkpoint(tmp_path / "evil.pt")


def test_run_directory_is_never_clobbered(tmp_path):
    rd = tmp_path / "run"
    c = ctx(run_dir=rd, config={"lr": 0.1})
    c.start()
    c.save_checkpoint({"x": 1})
    c.close()
    with pytest.raises(ConfigError, match="already holds a run.*--resume"):
        ctx(run_dir=rd, config={"lr": 0.1})
    with pytest.raises(CheckpointError, match="has no checkpoint.pt"):
        ctx(run_dir=tmp_path / "empty", resume=True)
    with pytest.raises(CheckpointError, match="different configuration"):  # refused before any compute
        ctx(run_dir=rd, resume=True, config={"lr": 0.2})
    assert json.loads((rd / "config.json").read_text())["lr"] == 0.1
    ctx(run_dir=rd, resume=True, config={"lr": 0.1}).close()


def test_resume_restores_rng_streams_and_history(tmp_path):
    rd = tmp_path / "run"
    c = ctx(run_dir=rd, seed=5)
    c.start()
    c.rng("a").random(3)
    c.log_epoch(0, {"loss": 1.0})
    c.save_checkpoint({"epoch": 0})
    expected = c.rng("a").random(2)
    c.log_epoch(1, {"loss": 0.5})  # written after the checkpoint: dropped on resume
    c.close()
    r = ctx(run_dir=rd, seed=5, resume=True)
    state = r.load_checkpoint()
    assert state == {"epoch": 0}
    assert np.allclose(r.rng("a").random(2), expected)
    assert r.epoch_history() == [{"epoch": 0, "loss": 1.0}]
    lines = (rd / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0]


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    c = ctx(run_dir=tmp_path / "run")
    c.start()
    c.save_checkpoint({"ok": True})
    assert c.check_finite(torch.tensor(0.5)) == 0.5
    with pytest.raises(NonFiniteError) as e:
        c.check_finite(torch.tensor(float("nan")), "loss", step=12, epoch=1)
    msg = str(e.value)
    assert "loss became nan at step 12, epoch 1" in msg and "last good checkpoint is kept" in msg
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["ok"] is True


class Interrupt:
    def __init__(self, after: int):
        self.after, self.seen = after, 0

    @hookimpl
    def nas_candidate_evaluated(self, arch, scores):
        self.seen += 1
        if self.seen == self.after:
            raise KeyboardInterrupt("simulated kill")


def test_interrupted_strategy_resumes_to_the_same_result(tmp_path):
    data = nas_core.TensorImages(fake_images(16, 16))
    space = FakeSpace()
    full = FakeStrategy(budget=6).run(space, FakeObjective(), data, ctx(run_dir=tmp_path / "full", seed=2, config={"b": 6}))
    pm = nas_core.NasPluginManager(autoload=False)
    pm.register_plugin(Interrupt(after=3), "interrupt")
    with pytest.raises(KeyboardInterrupt):
        FakeStrategy(budget=6).run(
            space, FakeObjective(), data, ctx(run_dir=tmp_path / "cut", seed=2, config={"b": 6}, plugin_manager=pm)
        )
    assert not (tmp_path / "cut" / "result.json").exists()
    resumed = FakeStrategy(budget=6).run(
        space, FakeObjective(), data, ctx(run_dir=tmp_path / "cut", seed=2, config={"b": 6}, resume=True)
    )
    assert [str(c.arch) for c in resumed.candidates] == [str(c.arch) for c in full.candidates]
    assert [c.fitness for c in resumed.candidates] == pytest.approx([c.fitness for c in full.candidates], abs=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_group(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys, torch
            from nas_core import RunContext
            ctx = RunContext(device="cpu", progress=False)
            t = torch.tensor([float(ctx.rank + 1)])
            ctx.all_reduce_mean(t)
            objs = ctx.all_gather_object({"rank": ctx.rank})
            shard = ctx.shard(list(range(5)))
            print(json.dumps({"rank": ctx.rank, "world": ctx.world_size, "mean": t.item(), "objs": objs,
                              "shard": shard, "backend": ctx.dist.backend}))
            torch.distributed.destroy_process_group()
            """
        )
    )
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert [o["rank"] for o in outs] == [0, 1]
    assert all(o["world"] == 2 and o["mean"] == 1.5 and o["backend"] == "gloo" for o in outs)
    assert outs[0]["objs"] == [{"rank": 0}, {"rank": 1}]
    assert outs[0]["shard"] == [0, 2, 4] and outs[1]["shard"] == [1, 3]


def test_missing_rendezvous_is_explained(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ConfigError, match="launch with torchrun"):
        RunContext(device="cpu")
