"""colorization: Lab conversion in torch, the ab bins, grayscale input, rebalancing, learning on photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from objectives_helpers import TinyCNN, train

from nas_core import create_objective, load_data
from nas_core.testing import FakeBackbone, fake_images
from nas_objectives import Colorization, ab_bins, lab_to_rgb, rgb_to_lab


def _setup(obj, bb, size):
    obj.setup(bb.feature_info, in_chans=3, img_size=size)
    return obj


def test_lab_of_reference_colours():
    rgb = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0], [0.5, 0.5, 0.5]]).T.reshape(1, 3, 6, 1)
    lab = rgb_to_lab(rgb)[0, :, :, 0].T
    expect = torch.tensor(  # CIE Lab (D65) of the sRGB primaries, white, black and mid grey
        [[53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86], [100, 0, 0], [0, 0, 0], [53.39, 0, 0]]
    )
    assert torch.allclose(lab, expect, atol=0.02)


def test_lab_round_trip():
    x = fake_images(4, 16, 3)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-4)


def test_ab_bins_cover_the_gamut():
    bins = ab_bins(10.0)
    assert 200 < bins.num_bins < 400  # Zhang et al. count 313 in-gamut bins of size 10
    assert bins is ab_bins(10.0)  # cached
    assert ab_bins(20.0).num_bins < bins.num_bins
    grey = torch.zeros(1, 2, 1, 1)
    idx = bins.index(grey)
    assert torch.allclose(bins.centers[idx.item()], torch.zeros(2))
    # every colour of a random sample maps to a bin centre within half a diagonal of the grid
    x = torch.rand(1, 3, 64, 64)
    ab = rgb_to_lab(x)[:, 1:]
    centers = bins.centers[bins.index(ab)].permute(0, 3, 1, 2)  # [1, 2, H, W]
    assert float((centers - ab).norm(dim=1).max()) <= 10 * 2**0.5 / 2 + 1e-4


def test_input_is_the_lightness_only():
    obj = _setup(Colorization(), TinyCNN(), 16)
    x = fake_images(2, 16, 0)
    lab = rgb_to_lab(x)
    recoloured = lab_to_rgb(torch.cat([lab[:, :1], lab[:, 1:] * 0.3], 1))  # same L, other colours
    inp, y = obj.split(x)
    inp2, y2 = obj.split(recoloured)
    assert inp.shape == x.shape and torch.equal(inp[:, 0], inp[:, 1]) and torch.equal(inp[:, 1], inp[:, 2])
    assert torch.allclose(inp, inp2, atol=1e-3)
    assert not torch.equal(y, y2)


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_targets_at_the_prediction_resolution(kind):
    bb = TinyCNN() if kind == "cnn" else FakeBackbone("vit")
    obj = _setup(Colorization(), bb, 16)
    _, y = obj.split(fake_images(2, 16, 0))
    r = min(bb.feature_info.reduction())
    assert y.shape == (2, 16 // r, 16 // r) and y.max() < obj.num_bins
    obj2 = _setup(Colorization(out_reduction=4), TinyCNN(), 16)
    assert obj2.split(fake_images(2, 16, 0))[1].shape == (2, 4, 4)


def test_rebalancing_weights():
    photos = load_data("photos", img_size=16)
    obj = _setup(Colorization(rebalance=True), TinyCNN(), 16)
    assert torch.equal(obj.class_weights(), torch.ones(obj.num_bins))  # no prior counted yet
    w = obj.fit_prior(photos.images[:256])
    counts = obj.ab_counts.float()
    assert bool(obj.prior_fixed) and counts.sum() == 256 * 16 * 16
    p = counts / counts.sum()
    kernel = torch.exp(-torch.cdist(obj.bins.centers, obj.bins.centers).pow(2) / (2 * 5.0**2))
    ps = kernel @ p
    ps = ps / ps.sum()
    assert torch.isclose((ps * w).sum(), torch.tensor(1.0), atol=1e-4)  # E_p[w] = 1
    common, rare = int(counts.argmax()), int(ps.argmin())
    assert w[rare] > w[common]
    # a fixed prior is not updated by training; an unfixed one counts the batches
    bb = TinyCNN()
    before = obj.ab_counts.clone()
    obj.train()
    obj.loss(bb, photos.images[:8])
    assert torch.equal(obj.ab_counts, before)
    fresh = _setup(Colorization(rebalance=True), bb, 16)
    fresh.train()
    fresh.loss(bb, photos.images[:8])
    assert fresh.ab_counts.sum() == 8 * 16 * 16


@pytest.mark.parametrize("rebalance", [False, True])
def test_loss_falls_on_photos(objectives, rebalance):
    photos = load_data("photos", img_size=16)
    batches = [photos.images[i : i + 16] for i in range(0, 64, 16)]
    torch.manual_seed(0)
    bb = TinyCNN()
    obj = _setup(create_objective("colorization", rebalance=rebalance), bb, 16)
    if rebalance:
        obj.fit_prior(photos.images[:512])
    before = obj.score(bb, photos.images[512:544])
    losses = train(obj, bb, batches, 30, lr=1e-2)
    assert np.mean(losses[-6:]) < 0.8 * np.mean(losses[:6])
    bb.eval()
    assert obj.score(bb, photos.images[512:544]) > before  # held-out crops


def test_score_is_repeatable_and_colorize_gives_images():
    photos = load_data("photos", img_size=16)
    bb = TinyCNN().eval()
    obj = _setup(Colorization(), bb, 16)
    x = photos.images[:4]
    assert obj.score(bb, x) == obj.score(bb, x)
    out = obj.colorize(bb, x)
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    # the lightness of the colourised image is the input's
    assert torch.allclose(rgb_to_lab(out)[:, 0], rgb_to_lab(x)[:, 0], atol=2.0)
