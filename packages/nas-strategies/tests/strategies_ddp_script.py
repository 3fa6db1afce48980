"""Run by test_distributed.py under torchrun (2 processes, gloo on CPU), and in-process for the
single-process reference. Writes one JSON of results per rank."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from nas_core import RunContext, TensorImages  # noqa: E402
from nas_core.testing import FakeObjective, FakeProxy, FakeSpace, fake_images  # noqa: E402
from nas_strategies import DartsSearch, EvolutionSearch  # noqa: E402
from strategies_toys import ToyObjective, ToySpace  # noqa: E402

GLOBAL_BATCH = 8


def run_all(distributed: bool) -> tuple[int, dict]:
    torch.set_num_threads(1)
    data = TensorImages(fake_images(128, 8, 0))
    out: dict = {}
    rank = 0
    jobs = {
        "darts": lambda b: DartsSearch(epochs=2, batch_size=b, a_lr=0.02, w_lr=0.1, steps_per_epoch=4),
        "darts_2nd": lambda b: DartsSearch(epochs=2, batch_size=b, a_lr=0.02, w_lr=0.1, steps_per_epoch=3, unrolled=True),
    }
    for name, make in jobs.items():
        ctx = RunContext(device="cpu", seed=0, progress=False, distributed=distributed)
        rank, world = ctx.rank, ctx.world_size
        res = make(GLOBAL_BATCH // world).run(ToySpace(), ToyObjective(), data, ctx)
        out[name] = res.to_json()
    ctx = RunContext(device="cpu", seed=0, progress=False, distributed=distributed)
    res = EvolutionSearch(population=6, generations=3, parents=3, train_epochs=1, batch_size=GLOBAL_BATCH // ctx.world_size,
                          steps_per_epoch=3).run(FakeSpace(), FakeObjective(), data, ctx)
    out["evolution_objective"] = res.to_json()
    ctx = RunContext(device="cpu", seed=0, progress=False, distributed=distributed)
    res = EvolutionSearch(population=6, generations=3, parents=3).run(FakeSpace(), FakeProxy(), data, ctx)
    out["evolution_proxy"] = res.to_json()
    out["world_size"] = ctx.world_size
    for v in out.values():
        if isinstance(v, dict):
            v.pop("versions", None)
    return rank, out


if __name__ == "__main__":
    rank, results = run_all(distributed=True)
    Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
    (Path(sys.argv[1]) / f"rank{rank}.json").write_text(json.dumps(results))
