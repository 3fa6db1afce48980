"""One-shot device check: every registered objective x strategy x space for a few steps on the device, in fp32
and in bf16, the zero-cost proxies on an NB201 network, and the DARTS weight steps against xautodl.

Built for the minutes a GPU is lent: results are written to the JSON after every item (a run cut short still
leaves what it measured), a failing combination is recorded with its error and the check goes on, and a global
``--budget`` (seconds) bounds the whole run: what would start after it is recorded as skipped.

What runs, in this order (the figures that matter most first):

1. the nb201 DARTS weight step (C=16, N=5, batch 64 and 256) against xautodl's ``TinyNetworkDarts`` (when
   ``xautodl`` is importable: ``pip install --no-deps xautodl``), fp32 and bf16, interleaved;
2. the composition matrix, taken from the registry as ``tests/test_composition.py`` takes it (one space per
   implementation, every objective, every strategy): each compatible triple runs ``nas_core.search`` on the
   device for a few steps at GPU-busy sizes (nb201 C=16 N=5 batch 256; the DARTS search network C=16 L=8 batch
   64; the ViT supernet at 224 px batch 64; other spaces with their smoke options, batch 64), in fp32 and bf16;
   first MIM + DARTS on nb201 and a cross-section covering every objective, strategy and space; incompatible
   triples are listed as refused (no compute);
3. every registered proxy on an NB201 network (C=16, N=5, batch 64), label-free (the MIM objective's loss),
   fp32 and bf16;
4. the DARTS-space weight step (C=16, L=8, batch 64) of our DARTS and PC-DARTS (K=4) networks against xautodl's
   ``NASNetworkDARTS``, fp32 and bf16 (``--quick``: the reference steps at C=4-8 and batch 2-16);
5. the rest of the matrix, as far as the budget goes.

Per item: images/s (training images through the search loop per second, over the steps after the first), peak
device memory (CUDA), wall time, and ``ok`` / ``failed`` (with the error) / ``refused`` / ``skipped``. The
summary has the bf16/fp32 images/s ratio per combination and the issue's targets.

    python bench/gpu_check.py                                   # on the GPU: ~7 minutes, writes gpu_check.json
    python bench/gpu_check.py --budget 300 --json out.json      # a shorter run, elsewhere
    python bench/gpu_check.py --device cpu --quick              # seconds on a CPU (what the test suite runs)

``--quick`` uses every component's ``smoke`` options, two steps per search and only the cross-section of the
matrix (the other compatible triples are listed as ``not run (quick)``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import math
import os
import platform
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from nas_core import hookimpl

HERE = Path(__file__).resolve().parent
PRECISIONS = ("fp32", "bf16")
FIRST = ("mim", "darts", "nb201")  # MAE-NAS on nb201: the bf16 target of the issue

#: GPU-busy sizes per space name (other spaces keep their smoke options)
SPACE_SIZES: dict[str, dict[str, Any]] = {
    "nb201": {"channels": 16, "num_cells": 5},
    "darts": {"search_channels": 16, "search_layers": 8},
    "vit": {},  # AutoFormer-tiny at 224 px, patch 16
}
SPACE_BATCH = {"nb201": 256, "darts": 64, "vit": 64}
DEFAULT_BATCH = 64
AVAILABLE_IMAGES = {"digits": 1797, "photos": 2048}


class TimeLimit(BaseException):
    """Raised in the main thread when an item runs past its time (a BaseException: no ``except Exception``
    inside the code under test swallows it)."""


# ----------------------------------------------------------------------------------------------
# the matrix, from the registry
# ----------------------------------------------------------------------------------------------


def smoke(kind: str, name: str) -> dict[str, Any]:
    import nas_core

    return dict(nas_core.get_entry(kind, name).metadata.get("smoke") or {})


def space_families() -> list[str]:
    """One registered space per implementation (presets of one class share their code paths), named by its
    shortest name (``vit`` rather than ``autoformer_base``)."""
    import nas_core

    groups: dict[Any, list[str]] = {}
    for e in nas_core.get_plugin_manager().registry("space"):
        key = e.factory if isinstance(e.factory, str) else id(e.factory)
        groups.setdefault(key, []).append(e.name)
    return [min(names, key=lambda n: (len(n), n)) for names in groups.values()]


def matrix() -> list[tuple[str, str, str]]:
    """Every registered objective x strategy x space family."""
    import nas_core

    return [(o, s, sp) for o in nas_core.list_objectives() for s in nas_core.list_strategies() for sp in space_families()]


def refusals(triples: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str | None]:
    """The message a label-free search of each triple is refused with (``None``: compatible); no compute."""
    import nas_core
    from nas_core import IncompatibleError, check_compatible

    made: dict[tuple[str, str], Any] = {}
    factories = {"objective": nas_core.create_objective, "strategy": nas_core.create_strategy, "space": nas_core.create_space}

    def get(kind: str, name: str) -> Any:
        if (kind, name) not in made:
            made[kind, name] = factories[kind](name, **smoke(kind, name))
        return made[kind, name]

    out: dict[tuple[str, str, str], str | None] = {}
    for o, s, sp in triples:
        try:
            check_compatible(get("strategy", s), get("space", sp), get("objective", o), has_labels=False)
            out[o, s, sp] = None
        except IncompatibleError as e:
            out[o, s, sp] = str(e)
    return out


#: components whose smoke searches cost the most on a CPU: the cross-section pairs them with cheap ones
EXPENSIVE = frozenset({"darts_2nd", "distill", "rotation"})


def cross_section(combos: list[tuple[str, str, str]], expensive: frozenset[str] = EXPENSIVE) -> list[tuple[str, str, str]]:
    """A few triples that together cover every objective, strategy and space of ``combos`` (greedy: each pick
    covers the most names not yet covered, then holds the fewest ``expensive`` names; then the matrix order)."""
    left = {("o", o) for o, _, _ in combos} | {("s", s) for _, s, _ in combos} | {("p", p) for _, _, p in combos}
    picked: list[tuple[str, str, str]] = []
    while left:
        best = max(combos, key=lambda c: (len({("o", c[0]), ("s", c[1]), ("p", c[2])} & left), -len(expensive & set(c))))
        gain = {("o", best[0]), ("s", best[1]), ("p", best[2])} & left
        if not gain:
            break
        picked.append(best)
        left -= gain
    return picked


def data_for(objective: str) -> str:
    return "photos" if objective == "colorization" else "digits"


# ----------------------------------------------------------------------------------------------
# running one item safely
# ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimit` after ``seconds`` (SIGALRM; a no-op where there is none or off the main thread)."""
    usable = seconds is not None and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise TimeLimit(f"stopped after {seconds:.0f} s (time limit)")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, max(0.01, float(seconds)))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Report:
    """The JSON being built: rewritten (atomically) after every item, so a killed run leaves its results."""

    def __init__(self, path: Path, meta: dict[str, Any], budget: float, item_limit: float):
        self.path = path
        self.t0 = time.perf_counter()
        self.budget = float(budget)
        self.item_limit = float(item_limit)
        self.data: dict[str, Any] = {"meta": meta, "reference": [], "combinations": [], "proxies": [], "finished": False}
        self.write()

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)

    def write(self) -> None:
        self.data["meta"]["elapsed_s"] = round(time.perf_counter() - self.t0, 2)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)

    def run(self, section: str, row: dict[str, Any], fn: Callable[[], dict[str, Any]], echo: bool = True) -> dict[str, Any]:
        """Run ``fn`` (which returns measurements) within the budget; record ``row`` + its outcome in ``section``."""
        left = self.left()
        if left <= 1.0:
            row.update(status="skipped", error="time budget spent")
        else:
            t = time.perf_counter()
            try:
                with time_limit(min(self.item_limit, left)):
                    row.update(fn())
                row["status"] = "ok"
            except (Exception, TimeLimit) as e:  # noqa: BLE001 - every failure is recorded, the check goes on
                row.update(status="failed", error=f"{type(e).__name__}: {e}"[:2000],
                           traceback=traceback.format_exc(limit=-8)[-4000:])
            row["wall_s"] = round(time.perf_counter() - t, 3)
            _free_memory()
        self.data[section].append(row)
        self.write()
        if echo:
            print(_line(section, row), flush=True)
        return row


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


def _line(section: str, row: dict[str, Any]) -> str:
    what = {
        "combinations": lambda r: f"{r['objective']} + {r['strategy']} on {r['space']}",
        "proxies": lambda r: f"proxy {r['proxy']}",
        "reference": lambda r: f"{r['kind']} step {r['impl']} batch {r['batch']}",
    }[section](row)
    fig = ""
    if row.get("images_per_s"):
        fig = f" {row['images_per_s']:.0f} images/s"
    elif row.get("seconds") is not None:
        fig = f" {row['seconds']:.3f} s"
    if row.get("peak_mem_mb"):
        fig += f", {row['peak_mem_mb']:.0f} MB"
    err = f" - {row['error'][:160]}" if row.get("error") and row["status"] != "refused" else ""
    return f"[{row['status']:>7s}] {what} {row.get('precision', '')}{fig}{err}"


# ----------------------------------------------------------------------------------------------
# the items
# ----------------------------------------------------------------------------------------------


class StepClock:
    """A lifecycle-hook plugin stamping every training step (synchronised with the device)."""

    def __init__(self, device: Any):
        self.device = device
        self.stamps: list[float] = []
        self.losses: list[float] = []

    def _sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @hookimpl
    def nas_step_end(self, context: Any, step: int, metrics: Any) -> None:
        self._sync()
        self.stamps.append(time.perf_counter())
        if isinstance(metrics, dict) and "loss" in metrics:
            self.losses.append(float(metrics["loss"]))


def _accepted(strategy: str) -> set[str]:
    import nas_core

    try:
        return set(inspect.signature(nas_core.get_entry("strategy", strategy).load()).parameters)
    except (TypeError, ValueError):
        return set()


def search_settings(objective: str, strategy: str, space: str, quick: bool, steps: int) -> dict[str, Any]:
    """Options of one search: the components' smoke options, then (full mode) GPU-busy sizes and a few steps."""
    sp_opts = smoke("space", space)
    st_opts = smoke("strategy", strategy)
    if quick:
        batch = int(st_opts.get("batch_size", 4))
    else:
        if space in SPACE_SIZES:
            sp_opts = dict(SPACE_SIZES[space])
        batch = SPACE_BATCH.get(space, DEFAULT_BATCH)
    accepted = _accepted(strategy)
    for key, value in (("batch_size", batch), ("epochs", 1), ("train_epochs", 1), ("steps_per_epoch", steps)):
        if key in accepted:
            st_opts[key] = value
    data = data_for(objective)
    limit = min(AVAILABLE_IMAGES.get(data, 1024), max(2 * batch * (steps + 1), 6 * batch))
    return {"space": sp_opts, "strategy": st_opts, "objective": smoke("objective", objective), "batch": batch,
            "data": data, "limit": limit}


def run_search(objective: str, strategy: str, space: str, precision: str, device: str, settings: dict[str, Any]) -> dict[str, Any]:
    import torch

    import nas_core

    pm = nas_core.get_plugin_manager()
    sp = nas_core.create_space(space, **settings["space"])
    obj = nas_core.create_objective(objective, **settings["objective"])
    strat = nas_core.create_strategy(strategy, **settings["strategy"])
    dev = torch.device(device)
    clock = StepClock(dev)
    name = f"gpu-check-clock-{id(clock):x}"
    pm.register_plugin(clock, name)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    try:
        res = nas_core.search(space=sp, objective=obj, strategy=strat, data=settings["data"], limit=settings["limit"],
                              img_size=getattr(sp, "img_size", None) or 32, device=device, precision=precision,
                              progress=False, seed=0, plugin_manager=pm)
    finally:
        pm.unregister_plugin(name)
    out: dict[str, Any] = {"steps": len(clock.stamps), "batch": settings["batch"], "best": str(res.best)[:300]}
    if len(clock.stamps) >= 2:
        out["images_per_s"] = settings["batch"] * (len(clock.stamps) - 1) / max(1e-9, clock.stamps[-1] - clock.stamps[0])
    if clock.losses:
        out["first_loss"], out["last_loss"] = clock.losses[0], clock.losses[-1]
        if not all(math.isfinite(v) for v in clock.losses):
            raise FloatingPointError(f"non-finite training loss: {clock.losses}")
    if dev.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def run_proxy(name: str, precision: str, device: str, quick: bool) -> dict[str, Any]:
    """One proxy, label-free (the MIM objective's loss), on a sampled NB201 network."""
    import numpy as np
    import torch

    import nas_core

    dev = torch.device(device)
    space = nas_core.create_space("nb201", **(smoke("space", "nb201") if quick else {"channels": 16, "num_cells": 5}))
    arch = space.sample(np.random.default_rng(0))
    net = space.build(arch, num_classes=10).to(dev)
    batch = 8 if quick else 64
    x = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(dev)
    proxy = nas_core.create_proxy(name)
    proxy.objective = nas_core.create_objective("mim")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        proxy.score(net, x)  # warm-up (kernel selection, the objective's heads)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        value = proxy.score(net, x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t
    out: dict[str, Any] = {"value": float(value), "seconds": seconds, "batch": batch, "arch": str(arch)}
    if not math.isfinite(out["value"]):
        raise FloatingPointError(f"proxy '{name}' gave {value}")
    if dev.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def _bench_spaces() -> Any:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import bench_spaces

    return bench_spaces


def run_reference_step(kind: str, impl: str, batch: int, precision: str, device: str, quick: bool) -> dict[str, Any]:
    r = _bench_spaces().worker_step(kind, impl, batch, 1 if quick else 10, 0 if quick else 3, device, precision, small=quick)
    out = {"step_s": r["step_s"], "images_per_s": r["images_per_s"]}
    if "peak_cuda_mb" in r:
        out["peak_mem_mb"] = r["peak_cuda_mb"]
    return out


def xautodl_available() -> bool:
    try:
        import xautodl.models.cell_searchs  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False
    return True


# ----------------------------------------------------------------------------------------------
# summary and table
# ----------------------------------------------------------------------------------------------


def _key(r: dict[str, Any]) -> tuple[str, str, str]:
    return (r["objective"], r["strategy"], r["space"])


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    combos = data["combinations"]
    by: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in combos:
        by.setdefault(_key(r), {})[r.get("precision", "")] = r
    counts: dict[str, int] = {}
    for r in combos + data["proxies"] + data["reference"]:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    ratios = {}
    for k, rows in by.items():
        a, b = rows.get("fp32", {}), rows.get("bf16", {})
        if a.get("images_per_s") and b.get("images_per_s"):
            ratios["/".join(k)] = b["images_per_s"] / a["images_per_s"]
    ran = [k for k, rows in by.items() if any(r["status"] in ("ok", "failed", "skipped") for r in rows.values())]
    both = all(all(rows.get(p, {}).get("status") == "ok" for p in PRECISIONS) for k, rows in by.items() if k in ran)
    targets: dict[str, Any] = {"every_run_combination_ok_in_fp32_and_bf16": both and bool(ran)}
    first = "/".join(FIRST)
    if first in ratios:
        targets["mim_darts_nb201_bf16_over_fp32"] = ratios[first]
        targets["mim_darts_nb201_bf16_at_least_1.5x"] = ratios[first] >= 1.5
    ref = {(r["kind"], r["impl"], r["batch"], r["precision"]): r for r in data["reference"] if r["status"] == "ok"}
    for (kind, impl, batch, prec), r in sorted(ref.items()):
        base = ref.get((kind, "reference", batch, prec))
        if impl != "reference" and base:
            targets[f"{kind}_{impl}_b{batch}_{prec}_time_vs_xautodl"] = r["step_s"] / base["step_s"]
            if r.get("peak_mem_mb") and base.get("peak_mem_mb"):
                targets[f"{kind}_{impl}_b{batch}_{prec}_memory_vs_xautodl"] = r["peak_mem_mb"] / base["peak_mem_mb"]
    return {"counts": counts, "bf16_over_fp32": ratios, "targets": targets}


def table(data: dict[str, Any]) -> str:
    lines = []
    by: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in data["combinations"]:
        by.setdefault(_key(r), {})[r.get("precision", "-")] = r
    lines.append(f"{'objective':13s} {'strategy':16s} {'space':8s} {'fp32 img/s':>10s} {'bf16 img/s':>10s} {'ratio':>6s} "
                 f"{'fp32 MB':>8s} {'bf16 MB':>8s}  status")

    def num(v: Any, fmt: str) -> str:
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    quiet: dict[str, int] = {}
    for (o, s, sp), rows in by.items():
        if all(r["status"] in ("refused", "not run (quick)") for r in rows.values()):
            for r in rows.values():
                quiet[r["status"]] = quiet.get(r["status"], 0) + 1
            continue
        a, b = rows.get("fp32", {}), rows.get("bf16", {})
        ratio = b.get("images_per_s") / a["images_per_s"] if a.get("images_per_s") and b.get("images_per_s") else None
        status = sorted({r["status"] for r in rows.values()})
        err = next((r.get("error", "") for r in rows.values() if r["status"] == "failed"), "")
        lines.append(
            f"{o:13s} {s:16s} {sp:8s} {num(a.get('images_per_s'), '10.0f')} {num(b.get('images_per_s'), '10.0f')} "
            f"{num(ratio, '6.2f')} {num(a.get('peak_mem_mb'), '8.0f')} {num(b.get('peak_mem_mb'), '8.0f')}  "
            f"{'/'.join(status)}{(' - ' + err[:100]) if err else ''}"
        )
    if quiet:
        lines.append("(not listed: " + ", ".join(f"{n} {k}" for k, n in sorted(quiet.items())) + " triples; see the JSON)")
    if data["proxies"]:
        lines.append("")
        lines.append(f"{'proxy':13s} {'fp32 s':>8s} {'bf16 s':>8s}  status")
        prox: dict[str, dict[str, dict[str, Any]]] = {}
        for r in data["proxies"]:
            prox.setdefault(r["proxy"], {})[r["precision"]] = r
        for name, rows in prox.items():
            a, b = rows.get("fp32", {}), rows.get("bf16", {})
            err = next((r.get("error", "") for r in rows.values() if r["status"] == "failed"), "")
            lines.append(f"{name:13s} {num(a.get('seconds'), '8.3f')} {num(b.get('seconds'), '8.3f')}  "
                         f"{'/'.join(sorted({r['status'] for r in rows.values()}))}{(' - ' + err[:100]) if err else ''}")
    if data["reference"]:
        lines.append("")
        lines.append(f"{'step':28s} {'precision':9s} {'s/step':>8s} {'img/s':>8s} {'MB':>8s}  status")
        for r in data["reference"]:
            lines.append(f"{r['kind'] + ' ' + r['impl'] + ' b' + str(r['batch']):28s} {r['precision']:9s} "
                         f"{num(r.get('step_s'), '8.4f')} {num(r.get('images_per_s'), '8.0f')} {num(r.get('peak_mem_mb'), '8.0f')}"
                         f"  {r['status']}{(' - ' + r.get('error', '')[:100]) if r['status'] == 'failed' else ''}")
    summary = data.get("summary") or {}
    if summary:
        lines.append("")
        lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items())))
        for k, v in summary["targets"].items():
            lines.append(f"  {k}: {v:.3f}" if isinstance(v, float) else f"  {k}: {v}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import nas_core

    meta: dict[str, Any] = {
        "device": args.device,
        "quick": args.quick,
        "budget_s": args.budget,
        "steps": args.steps,
        "torch": torch.__version__,
        "nas_core": getattr(nas_core, "__version__", "?"),
        "python": platform.python_version(),
        "host": platform.node(),
        "threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if args.device.startswith("cuda") and torch.cuda.is_available():
        dev = torch.device(args.device)
        meta["gpu"] = torch.cuda.get_device_name(dev)
        meta["capability"] = ".".join(map(str, torch.cuda.get_device_capability(dev)))
        meta["bf16_supported"] = torch.cuda.is_bf16_supported()
    try:
        meta["load_average"] = os.getloadavg()
    except OSError:  # pragma: no cover
        pass
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="device to check (default cuda)")
    p.add_argument("--quick", action="store_true", help="smoke sizes, 2 steps, the matrix's cross-section only")
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole run (default 420; quick 240)")
    p.add_argument("--item-limit", type=float, default=None, help="seconds one item may take (default 90; quick 60)")
    p.add_argument("--steps", type=int, default=None, help="training steps per search (default 3; quick 2)")
    p.add_argument("--json", default="gpu_check.json", help="where the results go (rewritten after every item)")
    p.add_argument("--parts", nargs="+", choices=("reference", "matrix", "proxies", "darts"), default=None,
                   help="what to run (default everything)")
    args = p.parse_args(argv)
    args.budget = args.budget if args.budget is not None else (240.0 if args.quick else 420.0)
    args.item_limit = args.item_limit if args.item_limit is not None else (60.0 if args.quick else 90.0)
    args.steps = args.steps or (2 if args.quick else 3)
    parts = set(args.parts or ("reference", "matrix", "proxies", "darts"))

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: the searches are deterministic
    import torch

    import nas_core

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"--device {args.device}: CUDA is not available here; use --device cpu (with --quick for a smoke run)",
              file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = Report(out, _meta(args), args.budget, args.item_limit)
    quick, dev = args.quick, args.device
    has_xautodl = xautodl_available()
    report.data["meta"]["xautodl"] = has_xautodl

    def reference(kind: str, impls: tuple[str, ...], batches: tuple[int, ...]) -> None:
        for batch in batches:
            for prec in PRECISIONS:
                for impl in impls:
                    row = {"kind": kind, "impl": impl, "batch": batch, "precision": prec}
                    if impl == "reference" and not has_xautodl:
                        report.data["reference"].append(dict(row, status="skipped", error="xautodl is not installed"))
                        continue
                    report.run("reference", row, lambda: run_reference_step(kind, impl, batch, prec, dev, quick))
        report.write()

    if "reference" in parts:
        reference("nb201", ("reference", "ours"), (16,) if quick else (64, 256))

    order: list[tuple[str, str, str]] = []
    rest: list[tuple[str, str, str]] = []
    if "matrix" in parts:
        triples = matrix()
        refused = refusals(triples)
        compatible = [t for t in triples if refused[t] is None]
        section = cross_section(compatible)
        order = ([FIRST] if FIRST in compatible else []) + [t for t in section if t != FIRST]
        rest = [] if quick else [t for t in compatible if t not in order]
        report.data["meta"]["matrix"] = {"triples": len(triples), "compatible": len(compatible), "cross_section": section}
        for t in triples:
            if refused[t] is not None:
                report.data["combinations"].append(
                    {"objective": t[0], "strategy": t[1], "space": t[2], "precision": "-", "status": "refused",
                     "error": refused[t]})
            elif t not in order and t not in rest:
                report.data["combinations"].append(
                    {"objective": t[0], "strategy": t[1], "space": t[2], "precision": "-", "status": "not run (quick)"})
        report.write()

    def searches(todo: list[tuple[str, str, str]]) -> None:
        for t in todo:
            settings = search_settings(*t, quick=quick, steps=args.steps)
            for prec in PRECISIONS:
                row = {"objective": t[0], "strategy": t[1], "space": t[2], "precision": prec}
                report.run("combinations", row, lambda: run_search(*t, prec, dev, settings))

    searches(order)  # MIM + DARTS on nb201, then the cross-section: every objective, strategy and space once

    if "proxies" in parts:
        for name in nas_core.list_proxies():
            for prec in PRECISIONS:
                row = {"proxy": name, "precision": prec}
                if callable(getattr(nas_core.create_proxy(name), "fit", None)):  # a combination fit on a benchmark
                    report.data["proxies"].append(dict(row, status="skipped", error="needs fit() on scored candidates"))
                    continue
                report.run("proxies", row, lambda: run_proxy(name, prec, dev, quick))

    if "darts" in parts:
        reference("darts", ("reference", "ours", "ours_pc4"), (2,) if quick else (64,))

    searches(rest)  # the rest of the matrix, as far as the budget goes

    report.data["summary"] = summarize(report.data)
    report.data["finished"] = True
    report.write()
    print()
    print(table(report.data))
    print(f"\nwrote {out} ({report.data['meta']['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
