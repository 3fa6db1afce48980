"""Benchmark of nas-spaces' supernets against the reference implementation, measured in the same run.

1. One DARTS weight-training step (forward + backward + SGD with momentum and weight decay) of the
   NAS-Bench-201 supernet (C=16, N=5, 32x32, 10-way linear head on the pooled last feature) against
   AutoDL-Projects' DARTS-V1 tiny search network (``xautodl.models.cell_searchs.TinyNetworkDarts``,
   affine-free running-stats-free cell BN, same sizes), at batch 64 and 16. Each measurement runs in a
   fresh subprocess (so peak RSS is that run's alone) with ``--threads`` threads; runs of ours and of the
   reference alternate; the time is the best step over all runs (robust to other load on the machine;
   medians are printed too) and the memory the median peak RSS.
2. The same step on the DARTS space: our DARTS search network (C=16, L=8, 32x32, batch 64) and our
   PC-DARTS network (partial channels K=4, edge normalisation) against xautodl's NASNet-style DARTS
   search network (``xautodl.models.cell_searchs.NASNetworkDARTS`` on its DARTS op list, affine-free BN
   with running statistics, as DARTS). xautodl builds 3 cells per stage; dropping one cell of the first
   stage gives exactly DARTS' L=8 layout (reductions at cells 2 and 5), the same cells as ours. The
   three alternate, each run in a fresh subprocess, like 1.
3. PC-DARTS: activation memory (bytes of the tensors autograd saves for backward, unique storages) of
   one forward of the DARTS search network (C=16, L=8) with partial channels K=4 against full DARTS
   (K=1), plus the peak RSS of that forward + backward.
4. With ``--device cuda`` (when available): images/s and peak CUDA memory of the steps of 1 and 2 in
   fp32 and bf16.

The reference needs ``pip install --no-deps xautodl`` in the environment running this script.

    python bench/bench_spaces.py                  # full run (tens of minutes on 2 cores: a DARTS-space step at batch 64 is ~1 min)
    python bench/bench_spaces.py --quick          # smoke run
    python bench/bench_spaces.py --parts darts    # only the DARTS-space comparison
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


def _reference_darts(c: int, layers: int) -> Any:
    """xautodl's NASNet-style DARTS search network cut to DARTS' ``layers=8`` cells."""
    from xautodl.models.cell_operations import SearchSpaceNames
    from xautodl.models.cell_searchs import NASNetworkDARTS

    if layers != 8:
        raise ValueError("the xautodl DARTS network is compared at L=8 (3 cells per stage, one of the first dropped)")
    net = NASNetworkDARTS(c, 3, 4, 4, 3, 10, SearchSpaceNames["darts"], False, True)
    del net.cells[2]  # 9 cells [N N N R N N R N N] -> DARTS' 8 [N N R N N R N N]; channels still match
    return net


def build_step_model(kind: str, impl: str, device: Any, small: bool = False) -> tuple[list[Any], Any]:
    """(weight parameters, ``logits(x)``) of one benchmarked network.

    ``kind`` ``nb201`` (C=16, N=5; ``small``: C=4, N=1) or ``darts`` (C=16, L=8; ``small``: C=8, L=8); ``impl``
    ``reference`` (xautodl), ``ours``, or ``ours_pc4`` (DARTS with partial channels K=4).
    """
    import torch.nn as nn

    c, n = (4, 1) if small and kind == "nb201" else (8, 8) if small else (16, 5 if kind == "nb201" else 8)
    if impl == "reference":
        if kind == "nb201":
            from xautodl.models.cell_operations import SearchSpaceNames
            from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

            net = TinyNetworkDarts(c, n, 4, 10, SearchSpaceNames["nas-bench-201"], False, False).to(device)
        else:
            net = _reference_darts(c, n).to(device)
        return net.get_weights(), lambda x: net(x)[1]
    from nas_core import create_space

    if kind == "nb201":
        sn = create_space("nb201").supernet(channels=c, num_cells=n)
    else:
        sn = create_space("darts").supernet(channels=c, layers=n, partial_channels=4 if impl == "ours_pc4" else 1)
    sn = sn.to(device)
    head = nn.Linear(sn.feature_info.channels()[-1], 10).to(device)
    return sn.weight_parameters() + list(head.parameters()), lambda x: head(sn(x)[-1].mean((2, 3)))


def worker_step(
    kind: str, impl: str, batch: int, steps: int, warmup: int, device: str, dtype: str, small: bool = False
) -> dict[str, Any]:
    """Time ``steps`` DARTS weight steps (after ``warmup``) of one network on 32x32 images (``small``: the small
    networks of :func:`build_step_model` on 16x16 images); peak memory of the whole run."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    params, logits = build_step_model(kind, impl, dev, small)
    opt = torch.optim.SGD(params, lr=0.025, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(0)
    size = 16 if small else 32
    x = torch.rand(batch, 3, size, size, generator=g).to(dev)
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
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t)
    out = {
        "kind": kind,
        "impl": impl,
        "batch": batch,
        "dtype": dtype,
        "step_s": statistics.median(times),
        "min_step_s": min(times),
        "peak_rss_mb": _peak_rss_mb(),
        "base_rss_mb": base_rss,
        "images_per_s": batch / statistics.median(times),
    }
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
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


def _row(runs: dict[str, list[dict[str, Any]]], ref: str = "reference") -> dict[str, Any]:
    """Best step time and median peak RSS per implementation, and every implementation's ratios to ``ref``."""
    row: dict[str, Any] = {}
    for impl, rs in runs.items():
        row[impl] = {
            "step_s": min(r["min_step_s"] for r in rs),
            "median_step_s": statistics.median(r["step_s"] for r in rs),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in rs),
            "base_rss_mb": statistics.median(r["base_rss_mb"] for r in rs),
        }
    for impl in runs:
        if impl == ref:
            continue
        a, b = row[impl], row[ref]
        row[f"{impl}_time_ratio"] = a["step_s"] / b["step_s"]
        row[f"{impl}_peak_rss_ratio"] = a["peak_rss_mb"] / b["peak_rss_mb"]
        row[f"{impl}_step_rss_ratio"] = (a["peak_rss_mb"] - a["base_rss_mb"]) / max(1e-9, b["peak_rss_mb"] - b["base_rss_mb"])
    return row


def _interleaved(kind: str, impls: tuple[str, ...], batch: int, steps: int, warmup: int, repeats: int,
                 threads: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
    for _ in range(repeats):
        for impl in impls:
            runs[impl].append(_spawn(["step", kind, impl, str(batch), str(steps), str(warmup), "cpu", "fp32"], threads))
    return _row(runs)


def _print_row(label: str, row: dict[str, Any], impls: tuple[str, ...]) -> None:
    parts = []
    for impl in impls:
        r = row[impl]
        parts.append(f"{impl} {r['step_s']:.3f} s (median {r['median_step_s']:.3f}), {r['peak_rss_mb']:.0f} MB")
    ratios = [
        f"{impl}: time x{row[f'{impl}_time_ratio']:.2f}, peak RSS x{row[f'{impl}_peak_rss_ratio']:.2f} "
        f"(step memory above the model x{row[f'{impl}_step_rss_ratio']:.2f})"
        for impl in impls
        if impl != "reference"
    ]
    print(f"  {label}: " + " | ".join(parts))
    print("    vs reference: " + "; ".join(ratios))


PARTS = ("nb201", "darts", "pc", "cuda")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer steps, one repeat, small batches")
    p.add_argument("--threads", type=int, default=2, help="torch threads of every measured process (default 2)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per run (default 8 for nb201, 2 for darts; quick 2)")
    p.add_argument("--repeats", type=int, default=None, help="fresh-process runs per configuration (default 3 nb201, 2 darts; quick 1)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="nb201 batches (default 64 16; quick 16)")
    p.add_argument("--darts-batch", type=int, default=None, help="DARTS-space batch (default 64; quick 8)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=None, help=f"what to run (default all of {', '.join(PARTS)})")
    p.add_argument("--device", default="cpu", help="cpu, or cuda for the images/s measurement")
    p.add_argument("--json", default=None, help="also write the results here")
    # worker mode
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker is not None:
        import torch

        torch.set_num_threads(args.threads)
        kind, *rest = args.worker
        if kind == "step":
            net, impl, batch, steps, warmup, device, dtype = rest
            out = worker_step(net, impl, int(batch), int(steps), int(warmup), device, dtype)
        else:
            k, batch = rest
            out = worker_pc(int(k), int(batch))
        print(json.dumps(out))
        return 0

    parts = set(args.parts or PARTS)
    if not args.device.startswith("cuda"):
        parts.discard("cuda")
    steps = args.steps or (2 if args.quick else 8)
    darts_steps = args.steps or 2
    batches = args.batches or ([16] if args.quick else [64, 16])
    repeats = args.repeats or (1 if args.quick else 3)
    darts_repeats = args.repeats or (1 if args.quick else 2)
    darts_batch = args.darts_batch or (8 if args.quick else 64)
    warmup = 1 if args.quick else 2
    results: dict[str, Any] = {"threads": args.threads, "load_before": _load(), "nb201": {}, "darts": {}, "pc_darts": {}}
    print(f"nas-spaces benchmark: {args.threads} threads, load average before: {results['load_before']}")
    ok = True
    if "nb201" in parts:
        print("\n1. DARTS weight step of the NB201 supernet (C=16, N=5, 32x32) vs xautodl TinyNetworkDarts (DARTS-V1)")
        for batch in batches:
            row = _interleaved("nb201", ("reference", "ours"), batch, steps, warmup, repeats, args.threads)
            results["nb201"][batch] = row
            _print_row(f"batch {batch:3d}", row, ("reference", "ours"))
            ok = ok and row["ours_time_ratio"] <= 0.8 and row["ours_peak_rss_ratio"] <= 1.0
    if "darts" in parts:
        impls = ("reference", "ours", "ours_pc4")
        print(f"\n2. DARTS weight step of the DARTS search network (C=16, L=8, 32x32), batch {darts_batch}: ours (K=1), "
              f"ours PC-DARTS (K=4) vs xautodl NASNetworkDARTS ({darts_repeats} x {darts_steps} steps each, interleaved)")
        row = _interleaved("darts", impls, darts_batch, darts_steps, 1, darts_repeats, args.threads)
        results["darts"][darts_batch] = row
        _print_row(f"batch {darts_batch:3d}", row, impls)
        ok = ok and row["ours_time_ratio"] <= 0.8 and row["ours_peak_rss_ratio"] <= 1.0
        ok = ok and row["ours_pc4_time_ratio"] <= 0.8 and row["ours_pc4_peak_rss_ratio"] <= 1.0
    if "pc" in parts:
        pc_batch = 8 if args.quick else 64
        print(f"\n3. PC-DARTS partial channels: DARTS search network (C=16, L=8), batch {pc_batch}")
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
        ok = ok and results["pc_darts"]["activation_ratio"] >= 2.0
    if "cuda" in parts:
        print("\n4. GPU images/s and peak memory (DARTS weight steps)")
        for kind, impls, batch in (("nb201", ("reference", "ours"), 64), ("darts", ("reference", "ours", "ours_pc4"), 64)):
            for dtype in ("fp32", "bf16"):
                for impl in impls:
                    r = _spawn(["step", kind, impl, str(batch), str(max(steps, 10)), "3", args.device, dtype], args.threads)
                    results.setdefault("gpu", {})[f"{kind}_{impl}_{dtype}"] = r
                    print(f"  {kind:5s} {impl:9s} {dtype}: {r['images_per_s']:.0f} images/s, {r.get('peak_cuda_mb', 0):.0f} MB")
    results["load_after"] = _load()
    print(f"\nload average after: {results['load_after']}")
    print("targets (time <= 0.8x, peak RSS <= 1x, PC K=4 >= 2x less activation memory):", "met" if ok else "NOT met")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
