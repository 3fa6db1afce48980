"""Benchmark of nas-spaces' supernets against the reference implementation, measured in the same run.

1. One DARTS weight-training step (forward + backward + SGD with momentum and weight decay) of the
   NAS-Bench-201 supernet (C=16, N=5, 32x32, 10-way linear head on the pooled last feature) against
   AutoDL-Projects' DARTS-V1 tiny search network (``xautodl.models.cell_searchs.TinyNetworkDarts``,
   affine-free running-stats-free cell BN, same sizes), at batch 64 and 16. Each measurement runs in a
   fresh subprocess (so peak RSS is that run's alone) with ``--threads`` threads; runs of ours and of the
   reference alternate; the time is the best step over all runs (robust to other load on the machine;
   medians are printed too) and the memory the median peak RSS.
2. PC-DARTS: activation memory (bytes of the tensors autograd saves for backward, unique storages) of
   one forward of the DARTS search network (C=16, L=8) with partial channels K=4 against full DARTS
   (K=1), plus the peak RSS of that forward + backward.
3. With ``--device cuda`` (when available): images/s of the nb201 supernet step in fp32 and bf16.

The reference needs ``pip install --no-deps xautodl`` in the environment running this script.

    python bench/bench_spaces.py            # full run (~5 minutes on 2 cores)
    python bench/bench_spaces.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any


# ----------------------------------------------------------------------------------------------
# workers (run in a fresh interpreter)
# ----------------------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker_nb201(impl: str, batch: int, steps: int, warmup: int, device: str, dtype: str) -> dict[str, Any]:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    dev = torch.device(device)
    if impl == "reference":
        from xautodl.models.cell_operations import SearchSpaceNames
        from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

        net = TinyNetworkDarts(16, 5, 4, 10, SearchSpaceNames["nas-bench-201"], False, False).to(dev)
        params = net.get_weights()

        def logits(x: torch.Tensor) -> torch.Tensor:
            return net(x)[1]

    else:
        from nas_core import create_space

        sn = create_space("nb201").supernet().to(dev)  # C=16, N=5
        head = nn.Linear(64, 10).to(dev)
        params = sn.weight_parameters() + list(head.parameters())

        def logits(x: torch.Tensor) -> torch.Tensor:
            return head(sn(x)[-1].mean((2, 3)))

    opt = torch.optim.SGD(params, lr=0.025, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, 32, 32, generator=g).to(dev)
    y = torch.randint(0, 10, (batch,), generator=g).to(dev)
    base_rss = _rss_mb()
    use_bf16 = dtype == "bf16"

    def step() -> float:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = F.cross_entropy(logits(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        return float(loss.detach())

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    out = {
        "impl": impl,
        "batch": batch,
        "step_s": statistics.median(times),
        "min_step_s": min(times),
        "peak_rss_mb": _peak_rss_mb(),
        "base_rss_mb": base_rss,
        "images_per_s": batch / statistics.median(times),
    }
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def worker_pc(k: int, batch: int) -> dict[str, Any]:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from nas_core import create_space

    torch.manual_seed(0)
    sn = create_space("darts").supernet(partial_channels=k)  # C=16, L=8
    head = nn.Linear(sn.feature_info.channels()[-1], 10)
    x = torch.rand(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    saved: dict[int, int] = {}
    weights = {p.untyped_storage().data_ptr() for p in list(sn.parameters()) + list(head.parameters())}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            st = t.untyped_storage()
            if st.data_ptr() not in weights:  # activations only, not the parameters
                saved[st.data_ptr()] = st.nbytes()
        except (RuntimeError, NotImplementedError):  # pragma: no cover - sparse/meta tensors
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(head(sn(x)[-1].mean((2, 3))), y)
    act = sum(saved.values())
    t = time.perf_counter()
    loss.backward()
    backward_s = time.perf_counter() - t
    return {"k": k, "batch": batch, "activation_mb": act / 2**20, "peak_rss_mb": _peak_rss_mb(), "backward_s": backward_s}


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------


def _spawn(args: list[str], threads: int) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", *args, "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer steps, one repeat, small PC batch")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="timed steps per run (default 8, quick 2)")
    p.add_argument("--repeats", type=int, default=None, help="fresh-process runs per configuration (default 3, quick 1)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="default 64 16 (quick: 16)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda for the images/s measurement")
    p.add_argument("--json", default=None, help="also write the results here")
    # worker mode
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker is not None:
        import torch

        torch.set_num_threads(args.threads)
        kind, *rest = args.worker
        if kind == "nb201":
            impl, batch, steps, warmup, device, dtype = rest
            out = worker_nb201(impl, int(batch), int(steps), int(warmup), device, dtype)
        else:
            k, batch = rest
            out = worker_pc(int(k), int(batch))
        print(json.dumps(out))
        return 0

    steps = args.steps or (3 if args.quick else 8)
    batches = args.batches or ([16] if args.quick else [64, 16])
    repeats = args.repeats or (1 if args.quick else 3)
    warmup = 2
    results: dict[str, Any] = {"threads": args.threads, "load_before": _load(), "nb201": {}, "pc_darts": {}}
    print(f"nas-spaces benchmark: {args.threads} threads, load average before: {results['load_before']}")
    print("\n1. DARTS weight step of the NB201 supernet (C=16, N=5, 32x32) vs xautodl TinyNetworkDarts (DARTS-V1)")
    for batch in batches:
        runs: dict[str, list[dict[str, Any]]] = {"reference": [], "ours": []}
        for _ in range(repeats):
            for impl in ("reference", "ours"):
                runs[impl].append(_spawn(["nb201", impl, str(batch), str(steps), str(warmup), "cpu", "fp32"], args.threads))
        row = {}
        for impl, rs in runs.items():
            row[impl] = {
                "step_s": min(r["min_step_s"] for r in rs),
                "median_step_s": statistics.median(r["step_s"] for r in rs),
                "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in rs),
                "base_rss_mb": statistics.median(r["base_rss_mb"] for r in rs),
            }
        row["time_ratio"] = row["ours"]["step_s"] / row["reference"]["step_s"]
        row["peak_rss_ratio"] = row["ours"]["peak_rss_mb"] / row["reference"]["peak_rss_mb"]
        row["step_rss_ratio"] = (row["ours"]["peak_rss_mb"] - row["ours"]["base_rss_mb"]) / max(
            1e-9, row["reference"]["peak_rss_mb"] - row["reference"]["base_rss_mb"]
        )
        results["nb201"][batch] = row
        print(
            f"  batch {batch:3d}: reference {row['reference']['step_s']:.3f} s (median {row['reference']['median_step_s']:.3f}), "
            f"{row['reference']['peak_rss_mb']:.0f} MB peak RSS | ours {row['ours']['step_s']:.3f} s "
            f"(median {row['ours']['median_step_s']:.3f}), {row['ours']['peak_rss_mb']:.0f} MB | "
            f"time x{row['time_ratio']:.2f}, peak RSS x{row['peak_rss_ratio']:.2f} "
            f"(step memory above the model x{row['step_rss_ratio']:.2f})"
        )
    pc_batch = 8 if args.quick else 64
    print(f"\n2. PC-DARTS partial channels: DARTS search network (C=16, L=8), batch {pc_batch}")
    pc = {k: _spawn(["pc", str(k), str(pc_batch)], args.threads) for k in (1, 4)}
    results["pc_darts"] = {
        "full": pc[1],
        "k4": pc[4],
        "activation_ratio": pc[1]["activation_mb"] / pc[4]["activation_mb"],
        "peak_rss_ratio": pc[1]["peak_rss_mb"] / pc[4]["peak_rss_mb"],
    }
    print(
        f"  saved activations: full {pc[1]['activation_mb']:.0f} MB, K=4 {pc[4]['activation_mb']:.0f} MB "
        f"-> {results['pc_darts']['activation_ratio']:.2f}x less | peak RSS full {pc[1]['peak_rss_mb']:.0f} MB, "
        f"K=4 {pc[4]['peak_rss_mb']:.0f} MB | backward full {pc[1]['backward_s']:.2f} s, K=4 {pc[4]['backward_s']:.2f} s"
    )
    if args.device.startswith("cuda"):
        print("\n3. GPU images/s (nb201 supernet step, batch 64)")
        for dtype in ("fp32", "bf16"):
            for impl in ("reference", "ours"):
                r = _spawn(["nb201", impl, "64", str(max(steps, 10)), "3", args.device, dtype], args.threads)
                results.setdefault("gpu", {})[f"{impl}_{dtype}"] = r
                print(f"  {impl:9s} {dtype}: {r['images_per_s']:.0f} images/s, {r.get('peak_cuda_mb', 0):.0f} MB")
    results["load_after"] = _load()
    print(f"\nload average after: {results['load_after']}")
    ok = all(r["time_ratio"] <= 0.8 and r["peak_rss_ratio"] <= 1.0 for r in results["nb201"].values())
    ok = ok and results["pc_darts"]["activation_ratio"] >= 2.0
    print("targets (time <= 0.8x, peak RSS <= 1x, PC K=4 >= 2x less activation memory):", "met" if ok else "NOT met")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
