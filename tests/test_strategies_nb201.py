"""nas-strategies on the real NAS-Bench-201 space of nas-spaces with the ground truth and published proxy
scores of ../shared/data (1104 architectures). Table-driven: no network is trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

pytest.importorskip("nas_spaces")

from nas_core import BenchmarkTable, NasPluginManager, RunContext, create_space, create_strategy  # noqa: E402
from nas_strategies import (  # noqa: E402
    ArchAutoencoder,
    EstimatorEnsemble,
    GraphCodec,
    MultiProxyEstimator,
    ScoreNormalizer,
    reconstruction_accuracy,
    train_autoencoder,
    train_estimator,
    unified_scores,
)

pytestmark = pytest.mark.shared_data

#: UP-NAS table 1, "weighted" (zen is not in the published NB201 scores)
UP_WEIGHTED = {
    "snip": -0.164, "flops": 0.609, "params": -0.587, "l2_norm": -0.100, "grasp": 0.441, "grad_norm": 0.089,
    "synflow": 0.840, "jacov": 1.000, "epe_nas": 0.094, "fisher": -0.342, "plain": 0.275, "nwot": 0.138,
}


@pytest.fixture(scope="module")
def table(shared_data):
    return BenchmarkTable.load(shared_data / "nb201_cifar10.json")


@pytest.fixture(scope="module")
def space():
    return create_space("nb201")


def _ctx(seed):
    return RunContext(device="cpu", seed=seed, progress=False, distributed=False, plugin_manager=NasPluginManager(autoload=False))


# ---------------------------------------------------------------------------------------------
# evolution vs random search with the table as fitness
# ---------------------------------------------------------------------------------------------
def test_evolution_beats_random_search_at_150_evaluations(table, space):
    top = table.top_fraction(0.01)
    hits = {"random": 0, "evolution": 0}
    accs: dict[str, list[float]] = {"random": [], "evolution": []}
    for seed in range(20):
        runs = {
            "random": create_strategy("random", budget=150, chunk=50),
            "evolution": create_strategy("evolution", population=30, parents=10, generations=5, budget=150),
        }
        for name, strat in runs.items():
            res = strat.run(space, table, None, _ctx(seed))
            assert res.extra["evaluations"] == 150
            assert all(str(c.arch) in table for c in res.candidates)  # the table is the candidate pool
            hits[name] += str(res.best) in top
            accs[name].append(table.accuracy(res.best))
    assert hits["evolution"] > hits["random"], hits
    assert np.mean(accs["evolution"]) > np.mean(accs["random"]), {k: np.mean(v) for k, v in accs.items()}


@pytest.mark.parametrize("name,opts", [
    ("evolution", dict(population=30, parents=10, generations=5, budget=150)),
    ("evolution", dict(population=30, tournament=10, aging=True, budget=150)),
    ("random", dict(budget=150)),
])
def test_constraints_are_never_violated_on_nb201(table, space, name, opts):
    params = sorted(space.cost(space.parse(a)).params for a in table.archs())
    limit = params[len(params) // 2]  # half the table is feasible
    for seed in range(3):
        res = create_strategy(name, max_params=limit, **opts).run(space, table, None, _ctx(seed))
        assert len(res.candidates) == 150
        assert all(space.cost(c.arch).params <= limit for c in res.candidates)
        unconstrained_best = table.best()
        assert space.cost(space.parse(unconstrained_best.arch)).params > limit  # the constraint binds


# ---------------------------------------------------------------------------------------------
# UP-NAS pieces
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def split(table):
    """The estimator's halves of the table: (train rows, held-out rows)."""
    perm = np.random.default_rng(0).permutation(len(table))
    return perm[: len(table) // 2], perm[len(table) // 2 :]


@pytest.fixture(scope="module")
def autoencoder(table, space, split):
    """arch2vec VGAE pretrained (no scores) on 6000 NB201 architectures, none of the held-out half among them."""
    archs = table.archs()
    held = {archs[i] for i in split[1]}
    rng = np.random.default_rng(0)
    others = [a for a in space.enumerate() if str(a) not in held]
    train = [others[int(i)] for i in rng.permutation(len(others))[:6000]]
    codec = GraphCodec(space, train)
    torch.manual_seed(0)
    vgae = ArchAutoencoder(codec.num_nodes, codec.num_classes)  # 5 GIN layers, 128 hidden, 16 per node
    train_autoencoder(vgae, codec.encode(train), epochs=10, batch_size=32, generator=torch.Generator().manual_seed(0))
    vgae.eval()
    return codec, vgae


def test_autoencoder_reconstructs_held_out_nb201_architectures(table, space, autoencoder, split):
    codec, vgae = autoencoder
    archs = table.archs()
    held = [space.parse(archs[i]) for i in split[1]]
    acc = reconstruction_accuracy(vgae, codec.encode(held))
    assert acc["ops"] >= 0.99 and acc["adjacency"] >= 0.99, acc
    assert acc["exact"] >= 0.95, acc
    assert vgae.embedding_dim == 128  # 8 nodes x 16, UP-NAS's NB201 embedding size


def test_estimator_trained_on_half_predicts_the_other_half(table, space, autoencoder, split):
    codec, vgae = autoencoder
    archs = table.archs()
    names = table.proxy_names()
    scores = table.proxy_matrix(names, archs)
    acc = np.array([table.accuracy(a) for a in archs])
    tr, te = split
    norm = ScoreNormalizer("rank").fit(scores[tr])
    with torch.no_grad():
        g = codec.encode([space.parse(a) for a in archs])
        emb = vgae.embed(g.adj, g.ops)
    torch.manual_seed(0)
    # UP-NAS's MPE (70 epochs, batch 16, Adam 1e-3); 5 of them averaged (mpe_ensemble=5): UP-NAS trains on 50% of
    # the 15625 NB201 architectures, the published table holds 1104, so one estimator on 552 is noisier
    mpe = EstimatorEnsemble([MultiProxyEstimator(emb.shape[1], len(names)) for _ in range(5)])
    train_estimator(mpe, emb[tr], torch.from_numpy(norm.transform(scores[tr]).astype(np.float32)), epochs=70,
                    batch_size=16, generator=torch.Generator().manual_seed(0))
    mpe.eval()
    with torch.no_grad():
        pred = mpe(emb[te]).numpy().astype(np.float64)
    diffs = {}
    for j, n in enumerate(names):
        ok = np.isfinite(scores[te, j])
        true_tau = kendalltau(scores[te, j][ok], acc[te][ok])[0]
        pred_tau = kendalltau(pred[ok, j], acc[te][ok])[0]
        diffs[n] = pred_tau - true_tau
    lam = np.array([UP_WEIGHTED[n] for n in names])
    true_up = kendalltau(unified_scores(norm.transform(scores[te]), lam), acc[te])[0]
    pred_up = kendalltau(pred @ lam, acc[te])[0]
    print({k: round(float(v), 3) for k, v in diffs.items()}, "unified", round(true_up, 3), round(pred_up, 3))
    # UP-NAS table 2: the predicted unified score keeps the true unified score's rank correlation with accuracy,
    # and so do the predicted proxies on average (the paper's own per-proxy gaps reach 0.06 and 0.19)
    assert abs(pred_up - true_up) <= 0.05, (pred_up, true_up)
    assert np.mean([abs(d) for d in diffs.values()]) <= 0.05, diffs
    assert max(abs(d) for d in diffs.values()) <= 0.075, diffs


def test_gradient_ascent_on_the_table_returns_valid_table_architectures_and_runs_every_trajectory(table, space):
    for seed in range(1):
        strat = create_strategy("gradient_ascent", weights=UP_WEIGHTED, pretrain_samples=1000, num_starts=10)
        res = strat.run(space, table, None, _ctx(seed))
        assert res.extra["source"] == "table" and res.extra["proxies"] == list(UP_WEIGHTED)
        for c in res.candidates:  # valid NB201 architectures inside the table, re-scored from it
            assert space.parse(str(c.arch)) == c.arch and str(c.arch) in table
        searched = [c for c in res.candidates if c.scores["searched"] == 1.0]  # found by the ascent
        starts = res.extra["start_fitness"]
        assert len(starts) == 10 and 1 <= len(searched) <= min(strat.rescore_top, res.extra["found"])
        # each found cell is re-scored once; how many distinct table rows the decodings land on depends on the
        # CPU's rounding (4 with AVX2 kernels, 7 with AVX-512 ones for seed 0)
        assert len({str(c.arch) for c in searched}) == len(searched)
        # no claim that the re-scored cells beat the starts here: decoded cells map to the nearest of the table's 1104
        # rows, and whether that cell is better than the starts' median depends on the seed and on the CPU's rounding
        # (seed 0 beat it in earlier runs and misses on a machine where 2 of seeds 0-5 do). The ascent's pay-off
        # is tested on the whole space, where decoding is exact (test_search_quality: a working ascent beats its best
        # start; bench_quality's upnas case)
        # NB201's graph is fixed: only operations are decoded, within each node's classes, so no trajectory is cut
        # short by an invalid decoding (they run max_steps)
        assert res.extra["stopped_invalid"] == 0 and res.extra["steps_run"] == strat.max_steps
