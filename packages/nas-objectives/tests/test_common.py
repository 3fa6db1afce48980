"""Shared machinery: masks reaching backbones, pyramid inspection, content keys."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from objectives_helpers import TinyCNN, TinyTokenViT

from nas_core import ConfigError
from nas_core.testing import FakeBackbone, fake_images
from nas_objectives import content_key, feature_info_of, masked_forward, random_patch_mask
from nas_objectives._common import backbone_patch_size, choose_patch_size, eval_mode, token_mask_factor


def test_patch_sizes_of_backbones():
    assert backbone_patch_size(TinyTokenViT(patch=4)) == 4
    assert backbone_patch_size(FakeBackbone("vit")) == 4  # constant reduction
    assert backbone_patch_size(TinyCNN()) is None
    vit = TinyTokenViT(patch=4)
    assert choose_patch_size(vit, None, 224) == 8 and choose_patch_size(vit, None, 16) == 4
    assert token_mask_factor(vit, 8) == 2 and token_mask_factor(vit, 6) is None
    assert token_mask_factor(TinyCNN(), 4) is None


def test_masks_not_on_the_token_grid_fall_back_to_pixel_masking():
    vit = TinyTokenViT(patch=4, img_size=12)
    x = fake_images(2, 12, 0)
    mask = random_patch_mask(2, (4, 4), 0.5)  # patch 3: not a multiple of 4
    masked_forward(vit, x, mask, 3, torch.full((3,), 5.0))
    assert vit.last_mask is None
    assert (vit.last_input == 5.0).sum() == 2 * 3 * 8 * 9


def test_feature_info_is_measured_when_missing():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 5, 3, 2, 1)
            self.b = nn.Sequential(nn.Conv2d(5, 7, 3, 2, 1), nn.BatchNorm2d(7))

        def forward(self, x):
            y = self.a(x)
            return [y, self.b(y)]

    net = Plain().train()
    fi = feature_info_of(net, 16)
    assert fi.channels() == [5, 7] and fi.reduction() == [2, 4]
    assert net.training and net.b[1].num_batches_tracked == 0  # probed in eval mode, mode restored
    with pytest.raises(ConfigError, match="img_size"):
        feature_info_of(net)


def test_eval_mode_restores_every_flag():
    net = TinyCNN().train()
    net.stages[1].eval()
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert net.training and not net.stages[1].training and net.stages[2].training


def test_content_keys():
    x = (fake_images(16, 8, 0) * 255).round() / 255  # 8-bit image data
    k = content_key(x)
    assert k.dtype == torch.int64 and len(set(k.tolist())) == 16
    assert torch.equal(content_key(x + 1e-3), k)  # below half an 8-bit step
    assert torch.equal(content_key(x.half().float()), k)
    y = x.clone()
    y[3, 1, 2, 2] += 0.05
    k2 = content_key(y)
    assert torch.equal(k2[torch.arange(16) != 3], k[torch.arange(16) != 3]) and k2[3] != k[3]
    assert not torch.equal(content_key(x, seed=1), k)
