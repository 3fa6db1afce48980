"""Every picture is readable by someone who did not write it: a title, axis labels on every plotted panel, edge
names, integer epochs, labels that do not overlap, a size that fits a screen, and a disconnected cell drawn as such."""

from __future__ import annotations

import itertools

import pytest

from nas_core._plots import alphas_figure, cells_figure, history_figure, is_connected, scatter_figure

NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
#: an NB201-shaped cell (``space.graph`` of nb201: every edge, none included)
CELL = [("in", "1", "nor_conv_3x3"), ("in", "2", "avg_pool_3x3"), ("1", "2", "skip_connect"),
        ("in", "out", "nor_conv_1x1"), ("1", "out", "none"), ("2", "out", "nor_conv_3x3")]
DISCONNECTED = [("in", "1", "nor_conv_3x3"), ("in", "2", "none"), ("1", "2", "skip_connect"),
                ("in", "out", "none"), ("1", "out", "none"), ("2", "out", "none")]


def _darts_cell(ops):
    src = ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3"]
    inputs = [(0, 1), (1, 2), (0, 3), (2, 4)]
    edges = [(src[j], str(node), op) for node, pair in enumerate(inputs) for j, op in zip(pair, ops)]
    return edges + [(str(n), "c_{k}", "") for n in range(4)]


def assert_readable(fig) -> None:
    """Titles on the figure and every panel; x and y labels on every panel that plots data; fits a screen."""
    w, h = fig.get_size_inches() * fig.dpi
    assert w <= 1600 and h <= 1200, f"{w:.0f}x{h:.0f} px does not fit a screen"
    assert fig._suptitle is not None and fig._suptitle.get_text().strip(), "the figure has no title"
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_title().strip(), "a panel has no title"
        plotted = ax.axison and len(ax.get_xticks()) + len(ax.get_yticks()) > 0  # a diagram has no ticks
        if plotted and (ax.lines or ax.collections):
            assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), f"panel {ax.get_title()!r} lacks axis labels"


def _text_boxes(fig, ax):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_text()]


def test_cells_have_titles_every_node_and_labels_that_do_not_overlap():
    graphs = {"normal": _darts_cell(["sep_conv_3x3", "skip_connect", "dil_conv_5x5", "sep_conv_5x5",
                                     "max_pool_3x3", "sep_conv_3x3", "dil_conv_3x3", "avg_pool_3x3"]),
              "reduce": _darts_cell(["max_pool_3x3"] * 8)}
    fig = cells_figure(graphs, title="found architecture: mim + darts on darts, seed 0", subtitle="Genotype(...)")
    assert_readable(fig)
    assert [ax.get_title() for ax in fig.axes] == ["normal cell", "reduce cell"]
    for ax in fig.axes:
        boxes = _text_boxes(fig, ax)
        names = [t for t, _ in boxes]
        assert {"c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"} <= set(names)
        for (t1, b1), (t2, b2) in itertools.combinations(boxes, 2):
            assert not b1.overlaps(b2), f"{t1!r} and {t2!r} overlap in the {ax.get_title()}"


def test_a_disconnected_cell_is_drawn_whole_and_marked():
    assert is_connected(CELL) and not is_connected(DISCONNECTED)
    fig = cells_figure({"cell": DISCONNECTED}, title="found architecture")
    assert_readable(fig)
    (ax,) = fig.axes
    names = {t for t, _ in _text_boxes(fig, ax)}
    assert {"in", "1", "2", "out"} <= names, "every node is drawn, the output node included"
    assert "DISCONNECTED" in fig._suptitle.get_text() and "DISCONNECTED" in ax.get_title()
    assert "no path from in to out" in ax.get_title()
    red = fig._suptitle.get_color()
    assert red not in ("black", "k", "#000000") and ax.title.get_color() == red
    connected = cells_figure({"cell": CELL}, title="found architecture")
    assert "DISCONNECTED" not in connected._suptitle.get_text() + connected.axes[0].get_title()


def test_architecture_weights_name_each_edge_and_show_a_single_epoch():
    history = [{"cell": [[0.2] * 5 for _ in range(6)]}]  # one epoch: the lines must still show
    edges = [f"node {i} <- node {j}" for i, j in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))]
    fig = alphas_figure(history, {"cell": NB201_OPS}, {"cell": edges}, title="architecture weights")
    assert_readable(fig)
    assert [ax.get_title() for ax in fig.axes] == [f"cell: {e}" for e in edges]
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch"
        ops = [line for line in ax.lines if not line.get_label().startswith("_")]  # not the dashed uniform line
        assert len(ops) == 5 and all(line.get_marker() not in (None, "", "None") for line in ops)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert NB201_OPS <= legend
    w, h = fig.get_size_inches()
    assert w / h < 3, "not a strip: six edges wrap into rows"


def test_history_panels_label_their_units_and_count_whole_epochs():
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.1 / (e + 1), "lr": 0.02 - 0.003 * e, "skips": e % 2}
               for e in range(6)]
    fig = history_figure(history, title="search history: mim + darts on nb201")
    assert_readable(fig)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "loss (train and validation)" and "skip connections" in titles[2]
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch"
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_multi_phase_histories_get_one_panel_per_phase_and_metric():
    history = [{"epoch": e, "phase": "train", "loss": 1.0 - 0.1 * e} for e in range(3)]
    history += [{"epoch": 3 + g, "phase": "search", "generation": g, "best_fitness": -0.5 + 0.1 * g, "evaluated": 8 * (g + 1),
                 "random": 4 if g == 0 else 0, "mutation": 0 if g == 0 else 3, "crossover": 0 if g == 0 else 1}
                for g in range(3)]
    history += [{"epoch": 6, "phase": "scores", "scored": 16}]
    fig = history_figure(history, title="search history: mim + evolution on vit")
    assert_readable(fig)
    by_title = {ax.get_title(): ax for ax in fig.axes}
    assert by_title["train: loss"].get_xlabel() == "train epoch"
    assert by_title["search: best fitness so far"].get_xlabel() == "generation"
    assert "search: new candidates, by how they were made" in by_title
    assert "scores (one record)" in by_title


def test_the_scatter_names_both_axes():
    assert_readable(_with_title(scatter_figure([1.0, 2.0, 3.0], [70.0, 80.0, 75.0], "fitness (higher is better)",
                                               "benchmark accuracy (%)", "candidates")))


def _with_title(fig):
    fig.suptitle(fig.axes[0].get_title())
    return fig


@pytest.mark.parametrize("n_nodes", [4, 16])
def test_long_chains_fit_a_screen(n_nodes):
    chain = [(f"L{i}", f"L{i + 1}", "h4 r3.5") for i in range(n_nodes - 1)]
    assert_readable(cells_figure({"blocks": chain}, title="found architecture"))
