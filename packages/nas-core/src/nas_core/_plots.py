"""Pictures of a run a person opens: the found cell(s), architecture-weight evolution, metric history and
fitness against benchmark accuracy. ``nas show RUN_DIR`` redraws them from ``result.json``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["draw_run", "draw_cells", "draw_alphas", "draw_history", "draw_scatter"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _topo(edges: Sequence[tuple[str, str, str]]) -> list[str]:
    nodes: list[str] = []
    for s, t, _ in edges:
        for n in (s, t):
            if n not in nodes:
                nodes.append(n)
    preds = {n: {s for s, t, _ in edges if t == n} for n in nodes}
    order: list[str] = []
    while len(order) < len(nodes):
        ready = [n for n in nodes if n not in order and preds[n] <= set(order)]
        if not ready:  # a cycle: keep insertion order for the rest
            order += [n for n in nodes if n not in order]
            break
        order.append(ready[0])
    return order


def _draw_graph(ax: Any, edges: Sequence[tuple[str, str, str]], title: str) -> None:
    """Nodes on a line in topological order; each edge a quadratic curve (above or below the line for long
    edges) with its operation written at the curve's midpoint."""
    order = _topo(edges)
    xs = {n: float(i) for i, n in enumerate(order)}
    t = np.linspace(0.0, 1.0, 60)
    for k, (s, d, label) in enumerate(edges):
        x0, x1 = xs[s], xs[d]
        span = abs(x1 - x0)
        h = 0.0 if span <= 1 else (1 if k % 2 else -1) * min(1.5, 0.38 * span)
        px = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * (x0 + x1) / 2 + t**2 * x1
        py = 2 * (1 - t) * t * h
        keep = (np.hypot(px - x0, py) > 0.22) & (np.hypot(px - x1, py) > 0.22)
        px, py = px[keep], py[keep]
        if len(px) < 2:
            continue
        ax.plot(px, py, color="0.4", lw=1.1, zorder=1)
        ax.annotate("", xy=(px[-1], py[-1]), xytext=(px[-2], py[-2]),
                    arrowprops=dict(arrowstyle="-|>", color="0.4", lw=1.1, mutation_scale=12, shrinkA=0, shrinkB=0), zorder=2)
        if label:
            ax.text((x0 + x1) / 2, h / 2 if h else 0.16, label, ha="center", va="center", fontsize=7, zorder=3,
                    bbox=dict(boxstyle="round,pad=0.2", fc="#fff8dc", ec="0.7"))
    for n, x in xs.items():
        ax.text(x, 0.0, n, ha="center", va="center", fontsize=8, zorder=4,
                bbox=dict(boxstyle="round,pad=0.3", fc="#cfe2f3", ec="#3d85c6"))
    ax.set_xlim(-0.7, max(1, len(order) - 1) + 0.7)
    ax.set_ylim(-1.0, 1.0)
    ax.set_title(title, fontsize=10)
    ax.axis("off")


def draw_cells(graphs: Mapping[str, Sequence[tuple[str, str, str]]], path: Path, title: str = "") -> Path:
    plt = _plt()
    n = max(1, len(graphs))
    fig, axes = plt.subplots(n, 1, figsize=(max(6, 1.6 * max(len(_topo(g)) for g in graphs.values()) if graphs else 6), 2.8 * n), squeeze=False)
    for ax, (name, edges) in zip(axes[:, 0], graphs.items()):
        _draw_graph(ax, edges, f"{name}")
    if title:
        fig.suptitle(title, fontsize=8, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_alphas(history: Sequence[Mapping[str, Any]], path: Path, op_names: Mapping[str, Any] | None = None) -> Path | None:
    """One panel per (cell type, edge): softmaxed weight of each op over epochs."""
    if not history:
        return None
    plt = _plt()
    cells = list(history[0].keys())
    panels = [(c, e) for c in cells for e in range(len(history[0][c]))]
    cols = min(7, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.9 * rows), squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (cell, edge) in zip(axes.flat, panels):
        ax.axis("on")
        w = np.array([np.asarray(h[cell][edge], dtype=float) for h in history])  # [epochs, ops]
        names = (op_names or {}).get(cell)
        if names and isinstance(names[0], (list, tuple)):
            names = names[edge]
        for k in range(w.shape[1]):
            ax.plot(range(len(w)), w[:, k], label=names[k] if names and k < len(names) else f"op{k}")
        ax.set_title(f"{cell} e{edge}", fontsize=7)
        ax.tick_params(labelsize=6)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=7)
    fig.suptitle("architecture weights over epochs", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_history(history: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path | None:
    """Every numeric metric of the per-epoch/generation history (loss curves, best/mean fitness, ...)."""
    keys: list[str] = []
    for h in history:
        for k, v in h.items():
            if k not in ("epoch", "kind", "generation") and isinstance(v, (int, float)) and not isinstance(v, bool) and k not in keys:
                keys.append(k)
    if not keys:
        return None
    keys = keys[:8]
    plt = _plt()
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, k in zip(axes.flat, keys):
        ax.axis("on")
        xs = [h.get("epoch", i) for i, h in enumerate(history) if isinstance(h.get(k), (int, float))]
        ys = [h[k] for h in history if isinstance(h.get(k), (int, float))]
        ax.plot(xs, ys, marker="o", ms=3)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("epoch / generation", fontsize=7)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_scatter(x: Sequence[float], y: Sequence[float], path: Path, xlabel: str, ylabel: str, title: str = "") -> Path | None:
    if len(x) < 2:
        return None
    from scipy.stats import kendalltau

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    ax.scatter(x, y, s=10, alpha=0.7)
    tau = kendalltau(x, y).statistic
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (Kendall tau {tau:.3f}, n={len(x)})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_run(run_dir: str | Path, *, result: Any = None, space: Any = None, table: Any = None) -> list[Path]:
    """Draw every picture that applies to the run; returns the files written."""
    from ._result import SearchResult

    run_dir = Path(run_dir)
    if result is None:
        result = SearchResult.load(run_dir / "result.json", space)
    out: list[Path] = []
    if space is not None:
        try:
            graphs = space.graph(result.best)
        except Exception:  # noqa: BLE001 - a drawing never fails a run
            graphs = {}
        if graphs:
            out.append(draw_cells(graphs, run_dir / "cells.png", title=str(result.best)[:200]))
    if result.arch_weights_history:
        p = draw_alphas(result.arch_weights_history, run_dir / "alphas.png", (result.extra or {}).get("op_names"))
        if p:
            out.append(p)
    if result.history:
        p = draw_history(result.history, run_dir / "history.png", title=f"{result.strategy} on {result.space}")
        if p:
            out.append(p)
    if table is not None and result.candidates:
        pairs = [(c.fitness, table.accuracy(c.arch)) for c in result.candidates if str(c.arch) in table and math.isfinite(c.fitness)]
        if pairs:
            xs, ys = zip(*pairs)
            p = draw_scatter(xs, ys, run_dir / "fitness_vs_accuracy.png", "fitness", "benchmark accuracy (%)", "candidates")
            if p:
                out.append(p)
    return out
