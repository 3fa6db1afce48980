"""``nas proxies``: score sampled architectures of a space with zero-cost proxies, write a CSV table, a
JSON summary and a correlation plot (proxy vs accuracy with a benchmark table, else proxy vs proxy)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = ["COMMAND", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="registered space to sample from (default nb201)")
    parser.add_argument("--sample", type=int, default=100, help="number of distinct architectures (default 100)")
    parser.add_argument(
        "--proxies", default=None,
        help="comma-separated proxy names (default: every installed proxy, third parties' included, but the "
             "combinations such as unified; see --unified)",
    )
    parser.add_argument(
        "--data", default="digits", help="digits | photos | random (Gaussian inputs) | an image folder or dataset name"
    )
    parser.add_argument("--batch", type=int, default=64, help="images per network (default 64)")
    parser.add_argument("--img-size", type=int, default=32, help="image size (default 32)")
    parser.add_argument("--num-classes", type=int, default=10, help="classifier size of the built networks (default 10)")
    parser.add_argument("--labels", action="store_true", help="supervised form: cross-entropy on the data's labels")
    parser.add_argument(
        "--objective",
        default=None,
        help="label-free loss from this registered objective (e.g. rotation); default: k-means pseudo-classes",
    )
    parser.add_argument("--table", default=None, help="benchmark table JSON: sample its architectures, add accuracy")
    parser.add_argument("--unified", default=None, help="also add the unified proxy with this preset (e.g. weighted)")
    parser.add_argument(
        "--out", default="proxies-out",
        help="output directory for proxies.csv, summary.json and correlation.png (default ./proxies-out)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling, weights, data and proxies")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 | mps ...")
    parser.add_argument(
        "--threads", default="auto", metavar="N|auto",
        help="CPU threads of torch (default auto: the CPUs this process may use that other processes leave idle)",
    )
    parser.add_argument(
        "-o", "--space-option", action="append", default=[], metavar="KEY=VALUE", help="space option, e.g. -o channels=8"
    )


def _parse_options(items: list[str]) -> dict[str, Any]:
    from nas_core import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"space option {item!r} must read KEY=VALUE (e.g. channels=8)")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _sample_archs(space: Any, n: int, rng: Any, table: Any) -> list[Any]:
    from nas_core import ConfigError

    if n < 1:
        raise ConfigError(f"--sample must be >= 1, got {n}")
    if table is not None:
        pool = table.archs()
        idx = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        return [space.parse(pool[int(i)]) for i in idx]
    archs: dict[str, Any] = {}
    for _ in range(50 * n):
        a = space.sample(rng)
        archs.setdefault(str(a), a)
        if len(archs) >= n:
            break
    return list(archs.values())


def _images(args: argparse.Namespace) -> tuple[Any, Any]:
    import torch
    from nas_core import ConfigError, load_data

    if args.batch < 2:
        raise ConfigError(f"--batch must be >= 2 (correlation-based proxies compare images), got {args.batch}")
    if args.data == "random":
        if args.labels:
            raise ConfigError("--labels needs labelled data (digits); random inputs have none")
        g = torch.Generator().manual_seed(args.seed)
        return torch.randn(args.batch, 3, args.img_size, args.img_size, generator=g), None
    data = load_data(args.data, img_size=args.img_size, labels=args.labels)
    g = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(len(data), generator=g)[: args.batch].tolist()
    items = [data[i] for i in idx]
    if args.labels:
        return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])
    return torch.stack(items), None


def _proxy_names(arg: str | None) -> list[str]:
    """The proxies to score, resolved through the registry: every installed proxy by default (combinations
    of other proxies, ``composite=True`` in their registration, come through --unified)."""
    from nas_core import ConfigError, get_plugin_manager

    registry = get_plugin_manager().registry("proxy")
    if not arg:
        return [e.name for e in registry if not e.metadata.get("composite")]
    names: list[str] = []
    for raw in (p.strip() for p in arg.split(",")):
        if not raw:
            continue
        entry = registry.get(raw)  # an unknown name raises the registry's error: close names, what is installed
        if entry.metadata.get("composite"):
            raise ConfigError(f"--proxies: '{entry.name}' combines other proxies; add it with --unified PRESET")
        if entry.name not in names:
            names.append(entry.name)
    if not names:
        raise ConfigError("--proxies: no proxy named; give comma-separated names (see `nas plugins --names`)")
    return names


def _is_builtin(name: str) -> bool:
    """Ours (scored together, with shared passes, by score_all), not a third party's of the same name."""
    from nas_core import get_entry

    from ._utils import PROXY_NAMES

    return name in PROXY_NAMES and get_entry("proxy", name).origin.dist == "nas-proxies"


def _score_others(proxies: dict[str, Any], net: Any, images: Any, targets: Any, loss_fn: Any, scores: Any) -> None:
    """Score ``net`` with the proxies that score_all does not know (third parties'), through their contract."""
    from nas_core import NasError

    for name, proxy in proxies.items():
        try:
            value = float(proxy.score(net, images, targets, loss_fn=loss_fn))
        except NasError as exc:
            scores.errors[name] = f"{name}: {exc}"
            continue
        if math.isfinite(value):
            scores[name] = value
        else:
            scores.errors[name] = f"{name}: the score is {value}"


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from nas_core import BenchmarkTable, apply_threads, create_proxy, create_space, select_device
    from tqdm import tqdm

    from ._engine import ProxyScores, score_all
    from ._objective import objective_loss
    from ._unified import UnifiedProxy, kendall_tau
    from ._utils import pseudo_targets

    names = _proxy_names(args.proxies)
    builtin = [p for p in names if _is_builtin(p)]
    others = {p: create_proxy(p) for p in names if p not in builtin}
    threads = apply_threads(args.threads)
    space = create_space(args.space, **_parse_options(args.space_option))
    table = BenchmarkTable.load(args.table) if args.table else None
    rng = np.random.default_rng(args.seed)
    archs = _sample_archs(space, args.sample, rng, table)
    device = select_device(args.device)
    images, targets = _images(args)
    images = images.to(device)
    loss_fn = None
    if targets is not None:
        targets = targets.to(device)
        how = "supervised (the data's labels)"
    elif args.objective:
        how = f"label-free (loss of objective '{args.objective}')"
    else:
        targets = pseudo_targets(images, args.num_classes, seed=args.seed)
        how = f"label-free (cross-entropy on {int(targets.max()) + 1} k-means pseudo-classes of the batch)"
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"nas proxies: {len(archs)} architectures of '{args.space}', {len(names)} proxies, {args.data} x{args.batch} "
        f"at {args.img_size}px on {device}"
        + (f" ({threads.threads} CPU thread{'s' if threads.threads > 1 else ''})" if device.type == "cpu" else "")
        + f"; {how}; writing proxies.csv, summary.json and correlation.png to {out_dir}/ (--out)",
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    # without a terminal (a log, CI) a line every tenth of the work instead of a bar
    lines, every, t_start = not sys.stderr.isatty(), max(1, len(archs) // 10), time.perf_counter()
    for k, arch in enumerate(tqdm(archs, desc="scoring", disable=not sys.stderr.isatty()), 1):
        torch.manual_seed(args.seed)
        net = space.build(arch, num_classes=args.num_classes).to(device)
        if args.objective and loss_fn is None:
            loss_fn = objective_loss(args.objective, net, img_size=args.img_size, seed=args.seed)
        t0 = time.perf_counter()
        scores = (score_all(net, images, targets, builtin, loss_fn=loss_fn, arch=arch, errors="skip", seed=args.seed)
                  if builtin else ProxyScores(arch=str(arch)))
        _score_others(others, net, images, targets, loss_fn, scores)
        row: dict[str, Any] = {"arch": str(arch)}
        if table is not None:
            row["val_accuracy"] = table.accuracy(arch)
        row.update({p: scores.get(p, float("nan")) for p in names})
        row["time_s"] = round(time.perf_counter() - t0, 4)
        row["errors"] = " | ".join(scores.errors.values())
        rows.append(row)
        if lines and (k % every == 0 or k == len(archs)):
            spent = time.perf_counter() - t_start
            eta = f", ETA {spent / k * (len(archs) - k):.1f} s" if k < len(archs) else ""
            print(f"nas proxies: {k}/{len(archs)} architectures scored ({spent:.1f} s{eta})",
                  file=sys.stderr, flush=True)
    columns = list(names)
    if args.unified:
        up = UnifiedProxy(preset=args.unified)
        missing = [p for p in up.proxies if p not in names]
        if missing:
            print(f"nas proxies: --unified {args.unified} needs {', '.join(missing)} too; not added", file=sys.stderr)
        else:
            combined = up.combine({p: [r[p] for r in rows] for p in up.proxies})
            for r, v in zip(rows, combined):
                r["unified"] = float(v)
            columns.append("unified")
    order = ["arch", *(["val_accuracy"] if table is not None else []), *columns, "time_s", "errors"]
    rows = [{k: r[k] for k in order} for r in rows]
    _write_csv(out_dir / "proxies.csv", rows)
    what = f"{len(rows)} architectures of {args.space}, {args.data} x{args.batch} at {args.img_size}px"
    summary: dict[str, Any] = {
        "space": args.space,
        "space_config": space.config(),
        "n": len(rows),
        "data": args.data,
        "loss": how,
        "seed": args.seed,
        "undefined": {p: sum(1 for r in rows if not math.isfinite(r[p])) for p in columns},
    }
    if table is not None:
        acc = [r["val_accuracy"] for r in rows]
        summary["kendall_tau"] = {p: kendall_tau([r[p] for r in rows], acc) for p in columns}
        _plot_vs_accuracy(out_dir / "correlation.png", rows, columns, summary["kendall_tau"], what)
        print("proxy          Kendall tau vs accuracy")
        for p in columns:
            print(f"  {p:<12} {summary['kendall_tau'][p]:+.3f}")
    else:
        summary["spearman"] = _spearman_matrix(rows, columns)
        _plot_heatmap(out_dir / "correlation.png", summary["spearman"], columns, what)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    print(f"wrote {out_dir / 'proxies.csv'}, {out_dir / 'summary.json'} and {out_dir / 'correlation.png'}")
    return 0


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0]) if rows else ["arch"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})


def _spearman_matrix(rows: list[dict[str, Any]], cols: list[str]) -> dict[str, dict[str, float]]:
    import numpy as np
    from scipy.stats import spearmanr

    out: dict[str, dict[str, float]] = {}
    for a in cols:
        out[a] = {}
        for b in cols:
            x = np.array([r[a] for r in rows], float)
            y = np.array([r[b] for r in rows], float)
            ok = np.isfinite(x) & np.isfinite(y)
            defined = ok.sum() > 2 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0  # constant: undefined
            rho = spearmanr(x[ok], y[ok]).statistic if defined else float("nan")
            out[a][b] = float(rho)
    return out


def _figure(w: float, h: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def _plot_heatmap(path: Path, corr: dict[str, dict[str, float]], cols: list[str], what: str) -> None:
    import numpy as np

    m = np.array([[corr[a][b] for b in cols] for a in cols])
    size = min(12.0, 2.4 + 0.55 * len(cols))
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(m, vmin=-1, vmax=1, cmap="coolwarm")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    ax.set_yticks(range(len(cols)), cols)
    for i in range(len(cols)):
        for j in range(len(cols)):
            finite = np.isfinite(m[i, j])
            ax.text(j, i, f"{m[i, j]:.2f}" if finite else "n/a", ha="center", va="center", fontsize=7,
                    color="black" if finite else "0.5")
    ax.set_xlabel("proxy")
    ax.set_ylabel("proxy")
    ax.set_title(f"Spearman rank correlation between proxies\n({what}; n/a: a constant score)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, label="Spearman rank correlation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_vs_accuracy(path: Path, rows: list[dict[str, Any]], cols: list[str], taus: dict[str, float], what: str) -> None:
    import numpy as np

    n = len(cols)
    ncol = min(4, n)
    nrow = math.ceil(n / ncol)
    fig = _figure(3.2 * ncol, min(11.5, 2.5 * nrow + 0.6))
    acc = np.array([r["val_accuracy"] for r in rows], float)
    for k, p in enumerate(cols):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        x = np.array([r[p] for r in rows], float)
        ok = np.isfinite(x)
        ax.scatter(x[ok], acc[ok], s=8, alpha=0.7)
        tau = f"{taus[p]:+.2f}" if math.isfinite(taus[p]) else "undefined"
        ax.set_title(f"{p}  (Kendall tau {tau})", fontsize=9)
        ax.set_xlabel(f"{p} score", fontsize=8)
        ax.set_ylabel("benchmark accuracy (%)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"zero-cost proxies against benchmark accuracy ({what})", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)


COMMAND = SimpleNamespace(add_arguments=add_arguments, run=run)
