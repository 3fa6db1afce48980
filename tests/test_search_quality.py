"""Search quality machinery on the real NB201 space: cells without an input-output path never abort a search and
are never returned silently; ``bench/bench_quality.py`` runs and judges found cells by the whole-space table."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("nas_spaces")
pytest.importorskip("nas_proxies")

import nas_core  # noqa: E402
from nas_core import NasPluginManager, Objective, RunContext, create_proxy, create_space, forward_features  # noqa: E402
from nas_strategies import DartsSearch  # noqa: E402
from nas_strategies._fitness import ProxyFitness, score_with_proxies  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DISCONNECTED = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"


def _ctx(seed=0, tmp=None):
    return RunContext(device="cpu", seed=seed, progress=False, distributed=False, run_dir=tmp)


class Silence(Objective):
    """A label-free loss that rewards silence: the feature energy. DARTS drives every edge to 'none'."""

    def loss(self, backbone, images, targets=None):
        return sum(f.float().pow(2).mean() for f in forward_features(backbone, images))

    @torch.no_grad()
    def score(self, backbone, images):
        return -float(self.loss(backbone, images))


def test_darts_never_returns_a_cell_without_a_path_silently(tmp_path):
    space = create_space("nb201", channels=4, num_cells=1)
    data = nas_core.TensorImages(torch.rand(64, 3, 16, 16))
    # the benchmark's discretisation (none competes): the argmax cell loses its input-output path
    strat = DartsSearch(epochs=3, batch_size=16, a_lr=0.3, w_lr=1e-4, supernet={"discretize_none": True})
    with pytest.warns(RuntimeWarning, match="no path from the input to the output"):
        res = strat.run(space, Silence(), data, _ctx(0, tmp_path / "run"))
    argmax = space.parse(res.extra["argmax_arch"])
    assert not argmax.connected()  # what plain discretisation gives ...
    assert res.best.connected() and space.defect(res.best) is None  # ... and what the search returns instead
    assert "no path" in res.extra["argmax_defect"]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["extra"]["argmax_arch"] == str(argmax)


def test_proxies_on_a_cell_without_a_path_give_the_worst_fitness_not_an_error():
    space = create_space("nb201", channels=4, num_cells=1)
    ctx = _ctx()
    x = torch.rand(16, 3, 16, 16)
    y = nas_core.pseudo_targets(x, 4)
    proxies = [create_proxy(n) for n in ("jacov", "synflow", "snip", "nwot")]
    broken = space.parse(DISCONNECTED)
    assert all(math.isnan(v) for v in score_with_proxies(proxies, space, broken, x, y, context=ctx, num_classes=4))
    fine = space.parse(DISCONNECTED.replace("none~0|", "skip_connect~0|", 1))
    assert all(math.isfinite(v) for v in score_with_proxies(proxies, space, fine, x, y, context=ctx, num_classes=4))
    fit = ProxyFitness(create_proxy("jacov"), space, x, y, context=ctx, num_classes=4)
    s = fit(broken)
    assert math.isnan(s["fitness"]) and s["undefined"] == 1.0


def test_random_search_with_a_data_dependent_proxy_ranks_broken_cells_last():
    ctx = RunContext(device="cpu", seed=3, progress=False, distributed=False, plugin_manager=NasPluginManager())
    space = create_space("nb201", channels=4, num_cells=1)
    data = nas_core.TensorImages(torch.rand(32, 3, 16, 16))
    strat = nas_core.create_strategy("random", budget=120, chunk=120, proxy_batch_size=16)
    res = strat.run(space, create_proxy("snip"), data, ctx)  # 120 draws: some of the 2.2% broken cells among them
    broken = [c for c in res.candidates if not c.arch.connected()]
    assert broken, "seed 3 draws at least one cell without a path; pick another seed if sampling changed"
    assert all(math.isnan(c.fitness) for c in broken)
    assert res.candidates[-len(broken):] == broken  # ranked last
    assert res.best.connected()
    assert set(res.extra["undefined"]) == {str(c.arch) for c in broken}
    assert all("no path" in why for why in res.extra["undefined"].values())
    assert "pseudo-classes" in res.extra["label_free_loss"]  # snip's loss without labels: recorded


def test_gradient_ascent_on_the_whole_space_never_queries_or_returns_broken_cells(tmp_path):
    ctx = RunContext(device="cpu", seed=0, progress=False, distributed=False, plugin_manager=NasPluginManager())
    space = create_space("nb201", channels=4, num_cells=1)
    data = nas_core.TensorImages(torch.rand(16, 3, 16, 16))
    strat = nas_core.create_strategy("gradient_ascent", proxies=["jacov", "synflow"], weights="sum", num_samples=24,
                                     pretrain_samples=200, vgae_epochs=2, mpe_epochs=5, num_starts=4, max_steps=50,
                                     proxy_batch_size=16, cache_dir="")
    res = strat.run(space, None, data, ctx)
    assert all(c.arch.connected() for c in res.candidates)
    assert res.extra["scored"] == 24 and set(res.extra["seconds"]) >= {"scoring", "autoencoder", "estimator", "search"}


@pytest.mark.slow
def test_bench_quality_quick_runs_and_judges_by_the_whole_space(tmp_path, analognas):
    out, fig = tmp_path / "q.jsonl", tmp_path / "q.png"
    cmd = [sys.executable, str(ROOT / "bench" / "bench_quality.py"), "--quick", "--cases", "mim+darts,upnas",
           "--seeds", "0", "--jobs", "2", "--out", str(out), "--figure", str(fig)]
    env = {**os.environ, "NAS_BENCH_PROXY_CACHE": str(tmp_path / "proxy-cache")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # UP-NAS scored in a cache of its own and handed its scores over to the shared one
    assert len(list((tmp_path / "proxy-cache").glob("*.json"))) == 13
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["case"] for r in rows} == {"mim+darts", "upnas"} and not any("error" in r for r in rows)
    for r in rows:
        assert r["accuracy"] == pytest.approx(analognas.accuracy(r["arch"]))
        assert 0.0 <= r["top_fraction"] < 1.0 and r["rank"] >= 1
    up = next(r for r in rows if r["case"] == "upnas")
    assert {"scoring", "autoencoder", "estimator", "search"} <= set(up["seconds"])
    assert "random_same_queries_accuracy" in up
    assert "| mim+darts |" in proc.stdout and fig.stat().st_size > 10_000


def test_nas_search_with_the_whole_space_table(tmp_path, analognas, capsys):
    from nas_core.cli import main

    run = tmp_path / "run"
    # tabular evolution over all 15,625 cells: the table is the fitness, nothing is trained
    rc = main(["search", "--space", "nb201", "--strategy", "evolution", "--table", "analognas", "--data", "none",
               "--set", "strategy.population=20", "--set", "strategy.generations=3", "--set", "strategy.parents=5",
               "--run-dir", str(run), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((run / "result.json").read_text())
    best = result["best"]
    assert result["extra"]["table_accuracy"] == pytest.approx(analognas.accuracy(best))
    assert analognas.percentile(best) < 0.10  # 60 evaluations with the truth as fitness: top 10% at least
    assert (run / "fitness_vs_accuracy.png").stat().st_size > 5_000
    assert main(["bench", str(run)]) == 0
    assert f"of {len(analognas)}" in capsys.readouterr().out


def test_training_free_evolution_with_the_unified_proxy_calibrates_on_its_first_candidates(tmp_path):
    space = create_space("nb201", channels=4, num_cells=1)
    data = nas_core.TensorImages(torch.rand(16, 3, 16, 16))

    def run(run_dir, generations, resume=False):
        ctx = RunContext(device="cpu", seed=1, progress=False, distributed=False, run_dir=run_dir, resume=resume,
                         plugin_manager=NasPluginManager())
        unified = create_proxy("unified", weights={"params": 1.0, "synflow": 1.0, "nwot": 0.5})
        assert unified.reference is None  # a preset or given weights: no normalisation statistics yet
        strat = nas_core.create_strategy("evolution", population=8, parents=3, generations=generations,
                                         proxy_batch_size=16)
        return strat.run(space, unified, data, ctx), unified

    res, unified = run(tmp_path / "a", 3)
    assert unified.reference is not None and res.extra["reference"].startswith("normalised against the first 8")
    fits = [c.fitness for c in res.candidates if math.isfinite(c.fitness)]
    assert len(fits) >= 20 and max(fits) > np.median(fits)
    # resumed after generation 1: the same reference set, the same result
    run(tmp_path / "b", 1)
    again, _ = run(tmp_path / "b", 3, resume=True)
    assert [str(c.arch) for c in again.candidates] == [str(c.arch) for c in res.candidates]
    assert [c.fitness for c in again.candidates] == pytest.approx([c.fitness for c in res.candidates], nan_ok=True)


def test_a_working_ascent_beats_its_best_start_on_the_whole_space():
    """UP-NAS on all of NB201 with proxies computed on the fly: a do-nothing ascent (every re-scored candidate one of
    its starts, or none better than the best start) fails this. Data-free proxies keep it fast."""
    space = create_space("nb201", channels=4, num_cells=1)
    data = nas_core.TensorImages(torch.rand(8, 3, 16, 16))
    wins = 0
    for seed in range(3):
        ctx = RunContext(device="cpu", seed=seed, progress=False, distributed=False, plugin_manager=NasPluginManager())
        strat = nas_core.create_strategy("gradient_ascent", proxies=["params", "synflow"], weights="sum", num_samples=40,
                                         pretrain_samples=400, vgae_epochs=8, mpe_epochs=30, num_starts=3,
                                         max_steps=1500, rescore_top=5, proxy_batch_size=8, cache_dir="")
        res = strat.run(space, None, data, ctx)
        starts = set(res.extra["starts"])
        searched = [c for c in res.candidates if c.scores["searched"] == 1.0]
        sample = [c for c in res.candidates if c.scores["searched"] == 0.0]
        assert searched and all(str(c.arch) not in starts for c in searched), "re-scored candidates must be new cells"
        best_start = max(c.fitness for c in sample if str(c.arch) in starts)
        assert best_start == max(c.fitness for c in sample)  # starts="best": the ascent climbs from the sample's best
        wins += max(c.fitness for c in searched) > best_start
    assert wins >= 2, wins


def _bench_quality():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "bench_quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_proxy_ceiling_is_the_best_cell_a_perfect_maximiser_of_the_proxy_picks(tmp_path, analognas):
    from nas_proxies import PRESETS

    bq = _bench_quality()
    cells = sorted(bq._scored_sample(0, bq.UPNAS["num_samples"]))  # what UP-NAS scores for seed 0
    acc = np.array([analognas.accuracy(a) for a in cells])
    for name, sign in (("good", 1.0), ("bad", -1.0)):
        # every proxy ranks the cells by accuracy (good) or against it (bad), in the direction its weight counts
        cache = tmp_path / name
        cache.mkdir()
        for proxy, w in PRESETS["weighted"].items():
            scores = {str(a): float(sign * np.sign(w) * analognas.accuracy(a)) for a in cells}
            # a cell outside the random sample (one a search re-scored), the best by every proxy: left out, or the
            # ceiling would be its 10%
            scores[DISCONNECTED] = float(np.sign(w) * 1e3)
            meta = {"proxy": proxy, "seed": 0, "space_config": {"channels": 8, "num_cells": 1}}
            (cache / f"{proxy}.json").write_text(json.dumps({"meta": meta, "scores": scores, "sha256": ""}))
        (cache / "damaged.json").write_text("{not json")  # ignored, never fatal
        rows = bq.proxy_ceiling(cache, analognas, sizes=(50, 150), draws=200)
        assert [r["n"] for r in rows] == [50, 150] and rows[0]["network"] == "C=8, N=1" and rows[0]["cells"] == len(cells)
        if sign > 0:  # the best of N cells: far above the sample's median, and better with more cells
            assert rows[0]["median"] >= np.quantile(acc, 0.97) and rows[1]["median"] >= rows[0]["median"]
        else:  # the worst of N
            assert rows[1]["median"] <= rows[0]["median"] <= np.quantile(acc, 0.03)
    assert bq.proxy_ceiling(tmp_path / "empty-does-not-exist", analognas) == []


def test_the_label_free_and_supervised_darts_cases_share_everything_but_the_labels():
    """MAE-NAS' claim is a comparison at the same data and budget: the supervised reference of every MIM + DARTS
    case differs from it only in the objective and the labels, and the target's pair searches on NB201's own
    network (the one the table's accuracies are for), shrunk only by --quick."""
    bq = _bench_quality()
    label_only = {"objective", "labels"}
    for mim, sup in (("mim+darts", "supervised+darts"), ("mim+darts-smallnet", "supervised+darts-smallnet"),
                     ("mim+darts-smallnet-40ep", "supervised+darts-smallnet-40ep")):
        a, b = bq.CASES[mim], bq.CASES[sup]
        assert a["objective"] == "mim" and b["objective"] == "supervised" and b["labels"] is True and "labels" not in a
        assert {k: v for k, v in a.items() if k not in label_only} == {k: v for k, v in b.items() if k not in label_only}
    assert set(bq.TARGETS) <= set(bq.MAIN_CASES) and "supervised+darts" in bq.MAIN_CASES
    assert bq.network("mim+darts") == "C=16, N=5" == bq.network("upnas")
    assert bq.network("mim+darts", quick=True) == "C=8, N=1" == bq.network("mim+darts-smallnet")


def test_bench_quality_runs_the_longest_searches_first_and_score_reusing_upnas_searches_last():
    bq = _bench_quality()
    cases = ["upnas-random", "jigsaw+darts", "upnas", "rotation+darts", "colorization+darts"]
    history = [{"case": "jigsaw+darts", "seed": 0, "wall_s": 30.0}, {"case": "rotation+darts", "seed": 0, "wall_s": 180.0},
               {"case": "rotation+darts", "seed": 1, "wall_s": 170.0}, {"case": "upnas", "seed": 0, "wall_s": 270.0},
               {"case": "upnas-random", "seed": 0, "wall_s": 900.0},  # it scored alone once: still after upnas
               {"case": "colorization+darts", "seed": 0, "error": "boom"}]  # a failed run says nothing of the cost
    jobs = sorted([(c, s, False, 1) for c in cases for s in (1, 0)], key=bq._job_order(cases, history))
    assert [(c, s) for c, s, *_ in jobs] == [
        ("colorization+darts", 0), ("colorization+darts", 1), ("upnas", 0), ("upnas", 1), ("rotation+darts", 0),
        ("rotation+darts", 1), ("jigsaw+darts", 0), ("jigsaw+darts", 1), ("upnas-random", 0), ("upnas-random", 1)]
