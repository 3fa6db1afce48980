"""Pictures of a run a person opens: the found cell(s), architecture-weight evolution, metric history and
fitness against benchmark accuracy. ``nas show RUN_DIR`` redraws them from ``result.json``.

Every picture has a title, axis labels with units and a legend where lines need one, and fits a screen
(at most 1600 x 1200 pixels). Each ``*_figure`` function builds a matplotlib ``Figure`` (no pyplot state, so
drawing is safe in threads and never opens a window); ``draw_*`` saves it.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "draw_run",
    "draw_cells",
    "draw_alphas",
    "draw_history",
    "draw_scatter",
    "cells_figure",
    "alphas_figure",
    "history_figure",
    "scatter_figure",
    "is_connected",
    "DEAD_OPS",
]

DPI = 100
MAX_WIDTH_IN, MAX_HEIGHT_IN = 16.0, 12.0
#: operations that carry nothing (a cell whose output receives only these is disconnected)
DEAD_OPS = frozenset({"none", "zero", "null"})
_ALERT = "#c0392b"
_NODE_COLOURS = {"input": ("#d9ead3", "#6aa84f"), "output": ("#fce5cd", "#e69138"), "inner": ("#cfe2f3", "#3d85c6"),
                 "dead": ("#eeeeee", "#999999")}

#: how metrics of the history read on an axis: (panel title, y-axis label)
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "loss": ("training loss", "loss (objective's units)"),
    "lr": ("weight learning rate", "learning rate"),
    "skips": ("skip connections in the current cell", "count (rising: DARTS' collapse)"),
    "best_fitness": ("best fitness so far", "fitness (higher is better)"),
    "mean_fitness": ("mean fitness of the population", "fitness (higher is better)"),
    "evaluated": ("architectures evaluated so far", "architectures"),
    "best_val_accuracy": ("benchmark accuracy of the best so far", "accuracy (%)"),
    "images_per_s": ("throughput", "images / s"),
    "grad_norm": ("gradient norm", "norm"),
    "scored": ("architectures scored by proxies", "architectures"),
    "kl": ("KL divergence of the embedding", "KL (nats)"),
    "found": ("architectures found by the ascent", "architectures"),
    "best_searched_fitness": ("best fitness among the ascent's finds", "fitness (higher is better)"),
    "val_acc": ("validation accuracy", "accuracy (%)"),
    "train_acc": ("training accuracy", "accuracy (%)"),
}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(width, MAX_WIDTH_IN), min(height, MAX_HEIGHT_IN)), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    """Written to a temporary file and renamed into place: a reader never sees half a picture, and a symbolic link
    planted at ``path`` is replaced, never written through."""
    from ._io import atomic_write

    return atomic_write(Path(path), lambda fh: fig.savefig(fh, dpi=DPI, format="png"))


# -- cells --------------------------------------------------------------------------------------------


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


def _roles(edges: Sequence[tuple[str, str, str]]) -> tuple[list[str], list[str], set[str]]:
    """(inputs, outputs, nodes fed by a live path from an input)."""
    order = _topo(edges)
    inputs = [n for n in order if not any(t == n for _, t, _ in edges)]
    outputs = [n for n in order if not any(s == n for s, _, _ in edges)]
    live = [(s, t) for s, t, op in edges if op not in DEAD_OPS]
    reached = set(inputs)
    changed = True
    while changed:
        changed = False
        for s, t in live:
            if s in reached and t not in reached:
                reached.add(t)
                changed = True
    return inputs, outputs, reached


def is_connected(edges: Sequence[tuple[str, str, str]]) -> bool:
    """Whether every output node of a cell is reached from its inputs through operations that carry data
    (not ``none``)."""
    _, outputs, reached = _roles(edges)
    return all(o in reached for o in outputs)


def _lanes(edges: Sequence[tuple[str, str, str]], xs: Mapping[str, float]) -> list[int]:
    """A height level per edge: 0 on the axis for neighbours, else the nearest level (above, then below)
    whose edges do not overlap this one, so arcs and their labels never cross."""
    lanes = [0] * len(edges)
    taken: dict[int, list[tuple[float, float]]] = {}
    order = sorted(range(len(edges)), key=lambda k: (abs(xs[edges[k][1]] - xs[edges[k][0]]), k))
    for k in order:
        a, b = sorted((xs[edges[k][0]], xs[edges[k][1]]))
        candidates = ([0] if b - a <= 1 else []) + [s * i for i in range(1, 2 * len(edges) + 2) for s in (1, -1)]
        for lane in candidates:
            if all(b <= x0 or a >= x1 for x0, x1 in taken.get(lane, [])):
                lanes[k] = lane
                taken.setdefault(lane, []).append((a, b))
                break
    return lanes


def _draw_cell(ax: Any, edges: Sequence[tuple[str, str, str]], name: str, lane_h: float) -> bool:
    """One cell as an arc diagram: nodes on a line in data-flow order, each edge an arc labelled with its
    operation; ``none`` edges dotted grey. Returns whether the cell is connected."""
    order = _topo(edges)
    xs = {n: float(i) for i, n in enumerate(order)}
    lanes = _lanes(edges, xs)
    inputs, outputs, reached = _roles(edges)
    connected = all(o in reached for o in outputs)
    t = np.linspace(0.0, 1.0, 80)
    for (s, d, label), lane in zip(edges, lanes):
        dead = label in DEAD_OPS
        x0, x1 = xs[s], xs[d]
        h = lane * lane_h
        px = x0 + (x1 - x0) * t
        py = h * (1 - np.abs(2 * t - 1) ** 3)  # rises quickly, flat on top: clear of the nodes it passes
        keep = np.hypot(px - x0, py) > 0.2
        keep &= np.hypot(px - x1, py) > 0.24
        px, py = px[keep], py[keep]
        if len(px) < 2:
            continue
        colour = "#b0b0b0" if dead else "0.3" if label else "0.6"  # unlabelled: plain data flow (e.g. concatenation)
        ax.plot(px, py, color=colour, lw=1.2 if label else 0.9, ls=":" if dead else "-", zorder=1)
        if not dead:
            ax.annotate("", xy=(px[-1], py[-1]), xytext=(px[-2], py[-2]),
                        arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.2, mutation_scale=13, shrinkA=0, shrinkB=0),
                        zorder=2)
        if label:
            ax.text((x0 + x1) / 2, h, label, ha="center", va="center", fontsize=8, zorder=3,
                    color="#888888" if dead else "black", style="italic" if dead else "normal",
                    bbox=dict(boxstyle="round,pad=0.2", fc="white" if dead else "#fff8dc", ec="#cccccc" if dead else "0.6"))
    for n, x in xs.items():
        role = "input" if n in inputs else "output" if n in outputs else "inner"
        if n not in reached:
            role = "dead"
        fc, ec = _NODE_COLOURS[role]
        if n in outputs and not connected:
            ec = _ALERT
        ax.text(x, 0.0, n, ha="center", va="center", fontsize=9, zorder=4, fontweight="bold" if n in outputs else "normal",
                bbox=dict(boxstyle="round,pad=0.35", fc=fc, ec=ec, lw=2 if ec == _ALERT else 1))
    top = max([lane for lane in lanes if lane > 0], default=0) * lane_h + 0.35
    bottom = min([lane for lane in lanes if lane < 0], default=0) * lane_h - 0.35
    ax.set_xlim(-0.6, max(1, len(order) - 1) + 0.6)
    ax.set_ylim(min(bottom, -0.45), max(top, 0.45))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(not connected)
        spine.set_color(_ALERT)
        spine.set_linewidth(2)
    if connected:
        ax.set_title(name, fontsize=11)
    else:
        src, dst = " / ".join(inputs), " / ".join(o for o in outputs if o not in reached)
        ax.set_title(f"{name} - DISCONNECTED: no path from {src} to {dst}\n(only 'none' reaches {dst}: the network "
                     f"ignores its input)", fontsize=10, color=_ALERT, fontweight="bold")
    return connected


def cells_figure(graphs: Mapping[str, Sequence[tuple[str, str, str]]], title: str = "", subtitle: str = "") -> Any:
    """The cells of an architecture (``space.graph(arch)``), one panel each, with a key to the drawing."""
    graphs = {k: list(v) for k, v in graphs.items() if v}
    n_nodes = max([len(_topo(g)) for g in graphs.values()], default=2)
    longest = max([len(op) for g in graphs.values() for _, _, op in g] + [len(n) for g in graphs.values() for n in _topo(g)], default=4)
    unit = min(max(1.1, 0.09 * longest + 0.95), (MAX_WIDTH_IN - 1.2) / max(1, n_nodes - 1))
    lane_h = 0.5
    heights = []
    for g in graphs.values():
        lanes = _lanes(g, {n: float(i) for i, n in enumerate(_topo(g))})
        heights.append(0.9 + 0.55 * (max([x for x in lanes if x > 0], default=0) - min([x for x in lanes if x < 0], default=0)) + 0.6)
    sub = textwrap.wrap(subtitle, 150)[:4]
    head = 0.5 + 0.2 * len(sub)
    fig = _figure(max(6.4, unit * (n_nodes - 1) + 1.6), sum(heights) + head + 0.45)
    total = sum(heights) + head + 0.45
    bottom = 0.45 / total
    y = 1 - head / total
    connected = True
    for (name, edges), h in zip(graphs.items(), heights):
        ax = fig.add_axes((0.02, y - h / total + 0.05 / total, 0.96, (h - 0.45) / total))
        panel = name if "cell" in name or len(graphs) == 1 else f"{name} cell"
        connected &= _draw_cell(ax, edges, panel, lane_h)
        y -= h / total
    suptitle = title or "discovered architecture"
    if not connected:
        suptitle += " - DISCONNECTED"
    fig.suptitle(suptitle, fontsize=12, y=1 - 0.12 / total, color="black" if connected else _ALERT, fontweight="bold")
    if sub:
        fig.text(0.5, 1 - 0.38 / total, "\n".join(sub), ha="center", va="top", fontsize=7, family="monospace", color="0.35")
    key = ("nodes in data-flow order; each arrow applies the operation on its label (unlabelled: passed on as is); "
           "green: inputs, orange: output, grey: receives nothing; dotted: 'none' (no connection)")
    fig.text(0.5, bottom * 0.5, "\n".join(textwrap.wrap(key, int(fig.get_figwidth() * 15))), ha="center", va="center",
             fontsize=8, color="0.3")
    return fig


def draw_cells(graphs: Mapping[str, Sequence[tuple[str, str, str]]], path: Path, title: str = "", subtitle: str = "") -> Path:
    return _save(cells_figure(graphs, title, subtitle), path)


# -- architecture weights -----------------------------------------------------------------------------


def _int_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))


def alphas_figure(
    history: Sequence[Mapping[str, Any]],
    op_names: Mapping[str, Any] | None = None,
    edge_names: Mapping[str, Sequence[str]] | None = None,
    title: str = "",
) -> Any:
    """One panel per (cell type, edge): the softmaxed weight of each candidate op after each epoch."""
    from matplotlib.ticker import MaxNLocator

    cells = list(history[0].keys())
    blocks = [(c, len(history[0][c])) for c in cells]
    widest = max(n for _, n in blocks)
    cols = widest if widest <= 4 else math.ceil(widest / 2) if widest <= 8 else 7
    rows_of = [math.ceil(n / cols) for _, n in blocks]
    n_ops = max(len(np.asarray(history[0][c][0])) for c in cells) + 1
    legend_rows = math.ceil(n_ops / max(1, int((2.25 * cols + 0.6) / 1.75)))
    fig = _figure(2.25 * cols + 0.6, 1.8 * sum(rows_of) + 1.3 + 0.22 * legend_rows)
    gs = fig.add_gridspec(sum(rows_of), cols, left=0.75 / fig.get_figwidth(), right=0.99, top=1 - 0.7 / fig.get_figheight(),
                          bottom=(0.75 + 0.22 * legend_rows) / fig.get_figheight(), hspace=0.75, wspace=0.42)
    epochs = np.arange(1, len(history) + 1)
    handles: dict[str, Any] = {}
    row0 = 0
    for (cell, n_edges), n_rows in zip(blocks, rows_of):
        names = (op_names or {}).get(cell)
        enames = list((edge_names or {}).get(cell) or [])
        for e in range(n_edges):
            ax = fig.add_subplot(gs[row0 + e // cols, e % cols])
            w = np.array([np.asarray(h[cell][e], dtype=float) for h in history])  # [epochs, ops]
            ops = names[e] if names and isinstance(names[0], (list, tuple)) else names
            for k in range(w.shape[1]):
                label = ops[k] if ops and k < len(ops) else f"op {k}"
                (line,) = ax.plot(epochs, w[:, k], marker="o", ms=3, lw=1.3, label=label,
                                  color=f"C{(list(handles).index(label) if label in handles else len(handles)) % 10}")
                handles.setdefault(label, line)
            edge = enames[e] if e < len(enames) and enames[e] else f"edge {e}"
            ax.set_title(f"{cell}: {edge}", fontsize=8)
            ax.set_xlabel("epoch", fontsize=7, labelpad=1)
            ax.set_ylabel("op weight", fontsize=7, labelpad=1)
            # zoomed on the data (weights often move by a few thousandths early on); dashed: uniform 1/K
            ax.axhline(1.0 / w.shape[1], color="0.5", lw=0.8, ls="--", zorder=0)
            lo, hi = float(min(w.min(), 1.0 / w.shape[1])), float(max(w.max(), 1.0 / w.shape[1]))
            pad = max(0.1 * (hi - lo), 0.002)
            ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
            ax.set_xlim(0.5, len(history) + 0.5)
            _int_ticks(ax)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.tick_params(labelsize=6)
            ax.grid(alpha=0.3)
        row0 += n_rows
    from matplotlib.lines import Line2D

    uniform = Line2D([], [], color="0.5", lw=0.8, ls="--")
    fig.legend([*handles.values(), uniform], [*handles, "uniform (1 / number of ops)"], loc="lower center",
               ncol=max(1, min(len(handles) + 1, int(fig.get_figwidth() / 1.75))), fontsize=8, title="candidate operation",
               title_fontsize=8, frameon=False)
    fig.suptitle(title or "architecture weights after each epoch (softmax over each edge's candidate operations)",
                 fontsize=11)
    return fig


def draw_alphas(
    history: Sequence[Mapping[str, Any]],
    path: Path,
    op_names: Mapping[str, Any] | None = None,
    edge_names: Mapping[str, Sequence[str]] | None = None,
    title: str = "",
) -> Path | None:
    if not history:
        return None
    return _save(alphas_figure(history, op_names, edge_names, title), path)


# -- metric history -----------------------------------------------------------------------------------


_ORIGINS = ("random", "mutation", "crossover", "children", "new")


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _panels(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """Panels of numeric metrics: ``*loss`` together, ``*_acc`` together, how new candidates were made together,
    every other metric alone."""
    keys: list[str] = []
    for h in history:
        for k, v in h.items():
            if k not in ("epoch", "kind", "generation", "step") and _numeric(v) and k not in keys:
                keys.append(k)
    panels: list[tuple[str, list[str]]] = []
    for k in keys:
        group = "loss" if k.endswith("loss") else "accuracy" if k.endswith("_acc") else "origin" if k in _ORIGINS else k
        for name, members in panels:
            if name == group:
                members.append(k)
                break
        else:
            panels.append((group, [k]))
    return panels


def _phases(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for h in history:
        out.setdefault(str(h.get("phase") or ""), []).append(h)
    return list(out.items())


def _labels(group: str, keys: Sequence[str], phase: str = "") -> tuple[str, str]:
    if group == "loss":
        return ("loss (train and validation)" if {"train_loss", "val_loss"} <= set(keys) else "loss",
                "loss" if phase and phase != "train" else "loss (objective's units)")
    if group == "accuracy":
        return "accuracy", "accuracy (%)"
    if group == "origin":
        return "new candidates, by how they were made", "architectures"
    return METRIC_LABELS.get(group, (group.replace("_", " "), group.replace("_", " ")))


def history_figure(history: Sequence[Mapping[str, Any]], title: str = "") -> Any:
    """Each numeric metric of the per-epoch (or per-generation) history against its epoch or generation, phase by
    phase (multi-phase searches such as UP-NAS); a phase with a single record is summarised as text."""
    from matplotlib.ticker import MaxNLocator

    plots: list[tuple[str, str, list[str], list[Mapping[str, Any]]]] = []
    notes: list[tuple[str, Mapping[str, Any]]] = []
    for phase, records in _phases(history):
        if len(records) == 1 and phase:
            notes.append((phase, records[0]))
            continue
        plots += [(phase, group, keys, records) for group, keys in _panels(records)]
    plots = plots[: 12 - len(notes[:3])]
    n = len(plots) + len(notes[:3])
    cols = min(3, max(1, n))
    rows = math.ceil(n / cols)
    fig = _figure(4.4 * cols + 0.4, 3.0 * rows + 0.8)
    for i, (phase, group, keys, records) in enumerate(plots):
        ax = fig.add_subplot(rows, cols, i + 1)
        per_generation = all("generation" in h for h in records)
        unit = "generation" if per_generation else f"{phase} epoch" if phase else "epoch"
        for k in keys:
            pts = [((float(h["generation"]) if per_generation else float(h.get("epoch", j)) if not phase else float(j)) + 1,
                    float(h[k])) for j, h in enumerate(records) if _numeric(h.get(k))]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, lw=1.3, label=k.replace("_", " "))
        panel, ylabel = _labels(group, keys, phase)
        ax.set_title(f"{phase}: {panel}" if phase else panel, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_xlabel(unit, fontsize=9)
        xs = [float(h["generation"]) + 1 if per_generation else (float(h.get("epoch", j)) if not phase else float(j)) + 1
              for j, h in enumerate(records)]
        ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
        _int_ticks(ax)
        if all(float(h[k]).is_integer() for k in keys for h in records if _numeric(h.get(k))):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # counts
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    for i, (phase, record) in enumerate(notes[:3], start=len(plots)):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.axis("off")
        ax.set_title(f"{phase} (one record)", fontsize=10)
        lines = [f"{k.replace('_', ' ')}: {v:.4g}" if isinstance(v, float) else f"{k.replace('_', ' ')}: {v}"
                 for k, v in record.items() if k not in ("epoch", "kind", "phase") and not isinstance(v, (list, dict))]
        ax.text(0.02, 0.95, "\n".join(textwrap.shorten(line, 60) for line in lines[:10]), va="top", ha="left",
                fontsize=9, family="monospace", transform=ax.transAxes)
    fig.suptitle(title or "metrics per epoch", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def draw_history(history: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path | None:
    """Every numeric metric of the per-epoch/generation history (loss curves, best/mean fitness, ...)."""
    if not _panels(history):
        return None
    return _save(history_figure(history, title), path)


# -- fitness against accuracy -------------------------------------------------------------------------


def scatter_figure(x: Sequence[float], y: Sequence[float], xlabel: str, ylabel: str, title: str = "") -> Any:
    from scipy.stats import kendalltau

    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(x, y, s=14, alpha=0.7)
    tau = kendalltau(x, y).statistic
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.set_title(f"{title} (Kendall tau {tau:.3f}, n={len(x)})" if title else f"Kendall tau {tau:.3f}, n={len(x)}", fontsize=11)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def draw_scatter(x: Sequence[float], y: Sequence[float], path: Path, xlabel: str, ylabel: str, title: str = "") -> Path | None:
    if len(x) < 2:
        return None
    return _save(scatter_figure(x, y, xlabel, ylabel, title), path)


# -- a run --------------------------------------------------------------------------------------------


def draw_run(run_dir: str | Path, *, result: Any = None, space: Any = None, table: Any = None) -> list[Path]:
    """Draw every picture that applies to the run; returns the files written."""
    from ._result import SearchResult

    run_dir = Path(run_dir)
    if result is None:
        result = SearchResult.load(run_dir / "result.json", space)
    what = f"{result.objective or result.proxy or 'table'} + {result.strategy} on {result.space}, seed {result.seed}"
    out: list[Path] = []
    if space is not None:
        try:
            graphs = space.graph(result.best)
        except Exception:  # noqa: BLE001 - a drawing never fails a run
            graphs = {}
        if graphs:
            out.append(draw_cells(graphs, run_dir / "cells.png", title=f"found architecture: {what}",
                                  subtitle=str(result.best)))
    if result.arch_weights_history:
        edge_names = getattr(space, "edge_names", None)
        p = draw_alphas(result.arch_weights_history, run_dir / "alphas.png", (result.extra or {}).get("op_names"),
                        edge_names() if callable(edge_names) else None,
                        title=f"architecture weights after each epoch: {what}")
        if p:
            out.append(p)
    if result.history:
        p = draw_history(result.history, run_dir / "history.png", title=f"search history: {what}")
        if p:
            out.append(p)
    if table is not None and result.candidates:
        pairs = [(c.fitness, table.accuracy(c.arch)) for c in result.candidates if str(c.arch) in table and math.isfinite(c.fitness)]
        if pairs:
            xs, ys = zip(*pairs)
            p = draw_scatter(xs, ys, run_dir / "fitness_vs_accuracy.png", "fitness of the search (higher is better)",
                             "benchmark accuracy (%)", f"candidates of {what}")
            if p:
                out.append(p)
    return out
