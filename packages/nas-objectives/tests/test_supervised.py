"""supervised and random_labels: labels required (and a label-free search refusing them before compute),
RLNAS labels tied to image content, learning on digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from objectives_helpers import TinyCNN, train

from nas_core import IncompatibleError, NasError, TensorImages, create_objective, load_data
from nas_core.testing import FakeSpace, FakeStrategy, fake_images
from nas_objectives import RandomLabels, Supervised, content_key


def _setup(obj, bb, size):
    obj.setup(bb.feature_info, in_chans=3, img_size=size)
    return obj


@pytest.mark.parametrize("name", ["supervised", "random_labels"])
def test_loss_without_labels_names_the_cause(objectives, name):
    bb = TinyCNN()
    obj = _setup(create_objective(name), bb, 8)
    with pytest.raises(NasError, match="needs labels") as err:
        obj.loss(bb, fake_images(2, 8, 0))
    assert f"objective '{name}'" in str(err.value) and "label-free objective" in str(err.value)


@pytest.mark.parametrize("name", ["supervised", "random_labels"])
def test_label_free_search_refuses_them_before_compute(objectives, register_plugin, nas_context, name):
    from nas_core.testing import FakePlugin

    register_plugin(FakePlugin(), "fake")
    data = TensorImages(fake_images(8, 16, 0))  # unlabeled
    assert data.has_labels is False
    with pytest.raises(IncompatibleError) as err:
        FakeStrategy().run(FakeSpace(), create_objective(name), data, nas_context)
    msg = str(err.value)
    assert f"objective '{name}' needs labels" in msg and "label-free" in msg
    for alternative in ("mim", "rotation", "colorization", "jigsaw", "distill"):
        assert alternative in msg
    assert "supervised," not in msg.split("Choose", 1)[1]
    assert not nas_context.run_dir.exists() or not any(nas_context.run_dir.rglob("*.pt"))  # nothing computed


def test_wrong_labels_are_refused():
    bb = TinyCNN()
    obj = _setup(Supervised(num_classes=3), bb, 8)
    x = fake_images(2, 8, 0)
    with pytest.raises(NasError, match="num_classes=3"):
        obj.loss(bb, x, torch.tensor([0, 5]))
    with pytest.raises(NasError, match="integer class labels"):
        obj.loss(bb, x, torch.tensor([0.5, 1.0]))


def test_supervised_learns_and_scores_on_labels(objectives):
    data = load_data("digits", img_size=8, labels=True)
    x, y = data.images[:128], data.labels[:128]
    torch.manual_seed(0)
    bb = TinyCNN()
    obj = _setup(create_objective("supervised"), bb, 8)
    losses = train(obj, bb, [x[:64], x[64:]], 30, lr=1e-2, targets=[y[:64], y[64:]])
    assert np.mean(losses[-6:]) < 0.5 * np.mean(losses[:6])
    bb.eval()
    # the score needs labels: given explicitly, or remembered for images loss() has seen
    s_explicit = obj.score(bb, x[:64], targets=y[:64])
    assert obj.score(bb, x[:64]) == s_explicit
    with pytest.raises(NasError, match="no known label"):
        obj.score(bb, data.images[1000:1010])
    acc = create_objective("supervised", score_metric="accuracy")
    acc.setup(bb.feature_info, 3, 8)
    acc.head.load_state_dict(obj.head.state_dict())
    assert acc.score(bb, data.images[1000:1100], targets=data.labels[1000:1100]) > 0.3  # 10 classes


def test_random_labels_are_fixed_per_image_whatever_the_batch():
    obj = RandomLabels(num_classes=10, seed=0)
    x = load_data("digits", img_size=8).images[:200]
    labels = obj.random_labels(x)
    perm = torch.randperm(200)
    assert torch.equal(obj.random_labels(x[perm]), labels[perm])  # order and batch do not matter
    assert torch.equal(obj.random_labels(x[:7]), labels[:7])
    assert torch.equal(obj.random_labels(x.clone()), labels)
    assert not torch.equal(RandomLabels(num_classes=10, seed=1).random_labels(x), labels)
    true = load_data("digits", img_size=8, labels=True).labels[:200]
    assert float((labels == true).float().mean()) < 0.25  # unrelated to the real classes


def test_random_labels_are_uniform():
    x = load_data("digits", img_size=8).images  # 1797 distinct images
    labels = RandomLabels(num_classes=10).random_labels(x)
    counts = torch.bincount(labels, minlength=10).double()
    chi2 = float(((counts - 179.7) ** 2 / 179.7).sum())
    assert chi2 < 27.9  # p = 0.001 for 9 degrees of freedom
    keys = content_key(x)
    assert len(set(keys.tolist())) == len({tuple(v) for v in (x * 255).round().flatten(1).tolist()})


def test_partial_corruption_keeps_the_other_labels():
    data = load_data("digits", img_size=8, labels=True)
    x, y = data.images[:1000], data.labels[:1000]
    obj = RandomLabels(num_classes=10, corrupt=0.3)
    used = obj.labels_for(x, y)
    corrupted = obj.corrupted(x)
    assert torch.equal(used[~corrupted], y[~corrupted])
    assert torch.equal(used[corrupted], obj.random_labels(x)[corrupted])
    assert 0.25 < float(corrupted.float().mean()) < 0.35


def test_random_labels_are_learned_and_scored_without_targets(objectives):
    x = load_data("digits", img_size=8).images[:64]
    torch.manual_seed(0)
    bb = TinyCNN()
    obj = _setup(create_objective("random_labels"), bb, 8)
    dummy = torch.zeros(64, dtype=torch.long)  # labelled data is required; its labels are replaced
    before = obj.score(bb, x)
    losses = train(obj, bb, [x], 60, lr=1e-2, targets=[dummy])
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])  # memorises the random labelling
    bb.eval()
    assert obj.score(bb, x) > before
