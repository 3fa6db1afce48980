"""rotation and jigsaw: labels made from images alone, the permutation set, learning on digits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from objectives_helpers import TinyCNN, train

from nas_core import ConfigError, create_objective, load_data
from nas_core.testing import FakeBackbone, fake_images
from nas_objectives import Jigsaw, Rotation, hamming_permutations, min_hamming_distance


def _setup(obj, bb, size):
    obj.setup(bb.feature_info, in_chans=3, img_size=size)
    return obj


# -- rotation --------------------------------------------------------------------------------------
def test_rotation_targets_come_from_the_images():
    obj = _setup(Rotation(), TinyCNN(), 16)
    x = fake_images(3, 16, 0)
    inputs, labels = obj.pretext_targets(x)
    assert obj.num_pretext_classes == 4
    assert inputs.shape == (12, 3, 16, 16) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for k in range(4):
        for i in range(3):
            assert torch.equal(inputs[3 * k + i], torch.rot90(x[i], k, dims=(1, 2)))
    # rotating an input by 90 degrees turns its label k into k+1
    assert torch.equal(torch.rot90(inputs[0], 1, dims=(1, 2)), inputs[3])


def test_rotation_learns_on_digits(objectives):
    data = load_data("digits", img_size=8)  # the digits' native size
    batches = [data.images[i : i + 16] for i in range(0, 64, 16)]
    held_out = data.images[200:264]
    torch.manual_seed(0)
    bb = TinyCNN()
    obj = _setup(create_objective("rotation"), bb, 8)
    losses = train(obj, bb, batches, 40, lr=1e-2)
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    bb.eval()
    acc = _setup(create_objective("rotation", score_metric="accuracy"), bb, 8)
    acc.head.load_state_dict(obj.head.state_dict())
    assert acc.score(bb, held_out) > 0.4  # chance is 0.25


def test_rotation_one_rotates_each_image_by_its_own_label():
    obj = _setup(Rotation(rotations="one"), TinyCNN(), 16)
    x = fake_images(64, 16, 0)
    inputs, labels = obj.rotate_one(x, torch.Generator().manual_seed(3))
    assert inputs.shape == x.shape and labels.shape == (64,)
    assert set(labels.tolist()) == {0, 1, 2, 3}  # 64 draws: every rotation occurs
    for i in range(64):
        assert torch.equal(inputs[i], torch.rot90(x[i], int(labels[i]), dims=(1, 2)))
    again, labels2 = obj.rotate_one(x, torch.Generator().manual_seed(3))
    assert torch.equal(labels, labels2) and torch.equal(inputs, again)
    assert torch.equal(x, fake_images(64, 16, 0))  # the input batch is not modified in place


def test_rotation_one_takes_a_quarter_of_the_inputs_and_the_same_score():
    calls = []

    class Counting(TinyCNN):
        def forward(self, x):
            calls.append(x.shape[0])
            return super().forward(x)

    torch.manual_seed(0)
    bb = Counting()
    x = fake_images(8, 16, 1)
    one, all4 = _setup(Rotation(rotations="one"), bb, 16), _setup(Rotation(), bb, 16)
    all4.head.load_state_dict(one.head.state_dict())
    one.loss(bb, x).backward()
    all4.loss(bb, x).backward()
    assert calls == [8, 32]
    bb.eval()
    assert one.score(bb, x) == all4.score(bb, x)  # the score sees all 4 rotations either way


def test_rotation_one_learns_on_digits(objectives):
    data = load_data("digits", img_size=8)
    batches = [data.images[i : i + 32] for i in range(0, 128, 32)]
    held_out = data.images[200:264]
    torch.manual_seed(0)
    bb = TinyCNN()
    obj = _setup(create_objective("rotation", rotations="one"), bb, 8)
    losses = train(obj, bb, batches, 60, lr=1e-2)
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    bb.eval()
    assert obj.score(bb, held_out) > -1.2  # chance: -ln 4 = -1.386


def test_rotation_rejects_an_unknown_mode():
    with pytest.raises(ConfigError, match="rotations must be one of all, one"):
        Rotation(rotations="four")


# -- permutation sets ------------------------------------------------------------------------------
def _recompute_greedy(perms: np.ndarray, criterion: str) -> None:
    """Every element after the first maximises the criterion over all permutations not yet chosen
    (recomputed by brute force over all n! permutations, independently of the implementation)."""
    allp = np.array(list(itertools.permutations(range(perms.shape[1]))), dtype=np.int8)
    d = (allp[:, None, :] != perms[None, :, :].astype(np.int8)).sum(-1)  # [n!, K] distances to each chosen
    index = {tuple(p): i for i, p in enumerate(allp.tolist())}
    rows = [index[tuple(p)] for p in perms.tolist()]
    for i in range(1, len(perms)):
        crit = d[:, :i].sum(1) if criterion == "mean" else d[:, :i].min(1)
        crit[rows[:i]] = -1
        assert crit[rows[i]] == crit.max(), f"element {i} is not the greedy choice"


@pytest.mark.parametrize("criterion", ["mean", "min"])
def test_hamming_set_is_the_greedy_maximal_set(criterion):
    perms = hamming_permutations(9, 12, seed=0, criterion=criterion)
    assert perms.shape == (12, 9) and perms.dtype.kind == "i"
    assert len({tuple(p) for p in perms.tolist()}) == 12
    assert all(sorted(p) == list(range(9)) for p in perms.tolist())
    _recompute_greedy(perms, criterion)
    d = (perms[:, None] != perms[None]).sum(-1)
    assert min_hamming_distance(perms) == d[~np.eye(12, dtype=bool)].min()
    if criterion == "min":
        # farthest-point greedy: the set's minimum distance is the last greedy value, which is the largest
        # minimum distance any remaining permutation had
        assert min_hamming_distance(perms) == (perms[-1] != perms[:-1]).sum(-1).min()


def test_hamming_set_is_repeatable_and_seeded():
    a = hamming_permutations(9, 30, seed=1)
    assert np.array_equal(a, hamming_permutations(9, 30, seed=1))
    assert not np.array_equal(a, hamming_permutations(9, 30, seed=2))
    with pytest.raises(ConfigError, match="num_permutations"):
        hamming_permutations(4, 25)


def test_jigsaw_defaults_small_and_large_images():
    small = _setup(Jigsaw(), TinyCNN(), 32)
    assert small.grid == 2 and small.num_pretext_classes == 24 and small.min_hamming == 2
    all24 = {tuple(p) for p in small.permutations.tolist()}
    assert all24 == set(itertools.permutations(range(4)))
    large = _setup(Jigsaw(num_permutations=100, criterion="min"), TinyCNN(), 96)
    assert large.grid == 3 and large.num_pretext_classes == 100
    assert large.min_hamming == min_hamming_distance(large.permutations.numpy()) >= 5
    assert "min_hamming" in repr(large)


def test_jigsaw_default_3x3_set_reproduces_noroozi_favaro():
    """Their 1000-permutation maximal set has average Hamming distance 8.00 and minimum 2 (Table 3)."""
    obj = _setup(Jigsaw(), TinyCNN(), 64)
    perms = obj.permutations.numpy()
    assert obj.grid == 3 and perms.shape == (1000, 9)
    d = (perms[:, None] != perms[None]).sum(-1)[~np.eye(1000, dtype=bool)]
    assert obj.min_hamming == d.min() == 2
    assert 7.95 < d.mean() < 8.05


@pytest.mark.parametrize("grid", [2, 3])
def test_jigsaw_targets_come_from_the_images(grid):
    obj = _setup(Jigsaw(grid=grid, num_permutations=20), TinyCNN(), 24)
    x = fake_images(5, 24, 0)
    shuffled, labels = obj.pretext_targets(x)
    assert shuffled.shape == x.shape and labels.shape == (5,)
    s2, l2 = obj.pretext_targets(x)
    assert torch.equal(shuffled, s2) and torch.equal(labels, l2)  # fixed seed
    cell = 24 // grid
    perms = obj.permutations[labels]
    for b in range(5):
        for k in range(grid * grid):  # tile k of the image sits in slot perm[k]
            s = int(perms[b, k])
            src = x[b, :, (k // grid) * cell : (k // grid + 1) * cell, (k % grid) * cell : (k % grid + 1) * cell]
            dst = shuffled[b, :, (s // grid) * cell : (s // grid + 1) * cell, (s % grid) * cell : (s % grid + 1) * cell]
            assert torch.equal(src, dst)


def test_jigsaw_mode_follows_the_pyramid():
    assert _setup(Jigsaw(), TinyCNN(), 16).mode == "tiles"
    assert _setup(Jigsaw(), FakeBackbone("vit"), 16).mode == "image"
    assert _setup(Jigsaw(mode="image"), TinyCNN(), 16).mode == "image"


@pytest.mark.parametrize("mode", ["tiles", "image"])
def test_jigsaw_learns_on_digits(objectives, mode):
    data = load_data("digits", img_size=16)
    batches = [data.images[i : i + 32] for i in range(0, 128, 32)]
    torch.manual_seed(0)
    bb = TinyCNN()
    obj = _setup(create_objective("jigsaw", mode=mode), bb, 16)
    losses = train(obj, bb, batches, 120, lr=3e-3)
    assert np.mean(losses[-20:]) < 0.8 * np.mean(losses[:20])
    assert losses[0] > 0.9 * math.log(24)  # starts at chance over 24 permutations


def test_jigsaw_score_is_repeatable():
    bb = TinyCNN()
    obj = _setup(Jigsaw(), bb, 16)
    x = fake_images(4, 16, 0)
    torch.manual_seed(1)
    a = obj.score(bb, x)
    torch.manual_seed(2)
    assert obj.score(bb, x) == a
