"""Checkpoint/resume: a run interrupted by an exception raised from a hook plugin mid-run and resumed in
the same run directory ends with exactly the result of an uninterrupted run."""

from __future__ import annotations

import pytest

from nas_core import TensorImages
from nas_core.testing import FakeObjective, FakeProxy, FakeSpace, fake_images
from nas_strategies import DartsSearch, EvolutionSearch, GradientAscentSearch, RandomSearch
from strategies_toys import comparable, fake_table, resume_equals_uninterrupted


def _data():
    return TensorImages(fake_images(48, 8, 0))


@pytest.mark.parametrize("unrolled", [False, True], ids=["first_order", "second_order"])
def test_darts_resume(tmp_path, registry, unrolled):
    full, resumed = resume_equals_uninterrupted(
        lambda: DartsSearch(epochs=4, batch_size=8, a_lr=0.01, unrolled=unrolled),
        FakeSpace(), FakeObjective, _data(), tmp_path, at=2,
    )
    assert comparable(resumed) == comparable(full)
    assert len(full.arch_weights_history) == 4


@pytest.mark.parametrize("at", [1, 3], ids=["during_supernet_training", "during_search"])
def test_evolution_with_an_objective_resumes(tmp_path, registry, at):
    # epochs 0-1 train the supernet (SPOS), epochs 2.. are generations
    full, resumed = resume_equals_uninterrupted(
        lambda: EvolutionSearch(population=5, generations=4, parents=3, train_epochs=2, batch_size=8, steps_per_epoch=3),
        FakeSpace(), lambda: FakeObjective(noise=0.1), _data(), tmp_path, at=at,
    )
    assert comparable(resumed) == comparable(full)
    assert [h["phase"] for h in full.history] == ["train", "train", "search", "search", "search", "search"]


@pytest.mark.parametrize("aging", [False, True], ids=["topk", "aging"])
def test_evolution_with_a_table_resumes(tmp_path, registry, aging):
    full, resumed = resume_equals_uninterrupted(
        lambda: EvolutionSearch(population=5, generations=4, parents=3, tournament=3, aging=aging),
        FakeSpace(), fake_table, None, tmp_path, at=2,
    )
    assert comparable(resumed) == comparable(full)
    assert full.extra["evaluations"] == 20


def test_random_search_with_a_proxy_resumes(tmp_path, registry):
    full, resumed = resume_equals_uninterrupted(
        lambda: RandomSearch(budget=12, chunk=4), FakeSpace(), FakeProxy, _data(), tmp_path, at=1,
    )
    assert comparable(resumed) == comparable(full)
    assert len(full.candidates) == 12


@pytest.mark.parametrize("at", [2, 9], ids=["during_autoencoder", "during_estimator"])
def test_gradient_ascent_resumes(tmp_path, registry, at):
    # epoch 0: scores, 1..6: autoencoder epochs, 7..14: estimator epochs, 15: search
    full, resumed = resume_equals_uninterrupted(
        lambda: GradientAscentSearch(vgae_epochs=6, mpe_epochs=8, mpe_batch_size=4, num_samples=16, pretrain_samples=0,
                                     num_starts=3, max_steps=100, rescore_top=3),
        FakeSpace(), fake_table, None, tmp_path, at=at,
    )
    assert comparable(resumed) == comparable(full)
    assert [h["phase"] for h in full.history].count("estimator") == 8
