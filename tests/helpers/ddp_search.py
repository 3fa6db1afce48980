"""Run under torchrun: a real label-free search through nas_core.search; every rank writes what it ended with."""

import json
import sys
from pathlib import Path

import torch

import nas_core


def smoke(kind, name):
    return dict(nas_core.get_entry(kind, name).metadata.get("smoke") or {})


def main(out: Path) -> None:
    torch.set_num_threads(1)
    runs = {
        "darts_mim_nb201": dict(space=nas_core.create_space("nb201", **smoke("space", "nb201")), objective="mim",
                                strategy=nas_core.create_strategy("darts", **smoke("strategy", "darts"))),
        "evolution_rotation_vit": dict(space=nas_core.create_space("vit", **smoke("space", "vit")), objective="rotation",
                                       strategy=nas_core.create_strategy("evolution", **smoke("strategy", "evolution"))),
    }
    ctx_rank = None
    report = {}
    for name, kw in runs.items():
        res = nas_core.search(data="digits", limit=32, seed=0, progress=False, run_dir=out / name, **kw)
        ctx_rank = int(torch.distributed.get_rank()) if torch.distributed.is_initialized() else 0
        report[name] = {
            "best": str(res.best),
            "arch_weights": res.arch_weights,
            "candidates": [c.to_json() for c in res.candidates],
            "history": res.history,
        }
    report["world_size"] = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    (out / f"rank{ctx_rank}.json").write_text(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
