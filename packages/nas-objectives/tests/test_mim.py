"""mim: masking, the loss only sees masked pixels, the hierarchical decoder reaches every stage,
repeatable score, token masking for backbones that support it, learning on the embedded digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from objectives_helpers import Recorder, TinyCNN, TinyTokenViT, train

from nas_core import ConfigError, create_objective, load_data
from nas_core.testing import FakeBackbone, fake_images
from nas_objectives import MIM, HierarchicalDecoder, default_patch_size, random_patch_mask
from nas_objectives._common import fixed_generator, mask_to_pixels


def _setup(obj, bb, size):
    obj.setup(bb.feature_info, in_chans=3, img_size=size)
    return obj


def test_default_patch_size_follows_mae_nas():
    assert default_patch_size(32) == 4
    assert default_patch_size(224) == 8
    assert default_patch_size(16) == 4 and default_patch_size(8) == 2


def test_mask_hides_exactly_the_ratio():
    m = random_patch_mask(5, (8, 8), 0.5, generator=fixed_generator(0))
    assert m.dtype == torch.bool and m.shape == (5, 8, 8)
    assert m.flatten(1).sum(1).tolist() == [32] * 5
    assert not torch.equal(m[0], m[1])  # each image its own mask
    assert torch.equal(m, random_patch_mask(5, (8, 8), 0.5, generator=fixed_generator(0)))


def test_invalid_options_are_refused():
    with pytest.raises(ConfigError, match="mask_ratio"):
        MIM(mask_ratio=1.0)
    with pytest.raises(ConfigError, match="decoder"):
        MIM(decoder="unet")
    with pytest.raises(ConfigError, match="loss"):
        MIM(loss="l3")


@pytest.mark.parametrize("norm_pix", [False, True])
@pytest.mark.parametrize("loss", ["l1", "l2"])
@pytest.mark.parametrize("backbone", ["cnn", "token_vit"])
def test_loss_ignores_targets_outside_the_mask(backbone, loss, norm_pix):
    torch.manual_seed(0)
    bb = TinyCNN() if backbone == "cnn" else TinyTokenViT()
    obj = _setup(MIM(loss=loss, norm_pix_loss=norm_pix), bb, 16)
    x = fake_images(4, 16, 1)
    mask, patch = obj.draw_mask(bb, x, fixed_generator(3))
    pix = mask_to_pixels(mask, patch).expand_as(x)
    bb.eval()
    base = obj.loss(bb, x, x, mask=mask)
    outside = torch.where(pix, x, torch.rand_like(x))  # change the target only where visible
    assert torch.equal(obj.loss(bb, x, outside, mask=mask), base)
    inside = torch.where(pix, torch.rand_like(x), x)  # the same change inside the mask matters
    assert not torch.allclose(obj.loss(bb, x, inside, mask=mask), base)


def test_cnn_input_is_masked_in_pixel_space_with_a_learned_token():
    bb = Recorder(TinyCNN())
    seen = {}
    inner_forward = bb.inner.forward

    def spy(x):
        seen["x"] = x.detach().clone()
        return inner_forward(x)

    bb.inner.forward = spy
    obj = _setup(MIM(), bb, 16)
    with torch.no_grad():
        obj.mask_token.copy_(torch.tensor([7.0, 8.0, 9.0]))
    x = fake_images(2, 16, 0)
    mask, patch = obj.draw_mask(bb, x, fixed_generator(0))
    obj.loss(bb, x, mask=mask).backward()
    pix = mask_to_pixels(mask, patch)[:, 0]
    for c, v in enumerate([7.0, 8.0, 9.0]):
        assert torch.all(seen["x"][:, c][pix] == v)
        assert not torch.any(seen["x"][:, c][~pix] == v)
    assert obj.mask_token.grad is not None and obj.mask_token.grad.abs().sum() > 0


def test_token_masking_backbone_gets_the_patch_mask_and_clean_pixels():
    torch.manual_seed(0)
    bb = TinyTokenViT(patch=4)
    obj = _setup(MIM(), bb, 16)
    x = fake_images(3, 16, 0)
    obj.loss(bb, x).backward()
    assert bb.last_mask is not None and bb.last_mask.shape == (3, 4, 4)  # at the backbone's patch size
    assert bb.last_mask.flatten(1).sum(1).tolist() == [8, 8, 8]
    from nas_objectives import normalize

    assert torch.allclose(bb.last_input, normalize(x))  # no pixel masking on top
    assert bb.mask_token.grad is not None and bb.mask_token.grad.abs().sum() > 0
    # a mask patch that is a multiple of the backbone's is repeated onto its token grid
    obj8 = _setup(MIM(patch_size=8), bb, 16)
    obj8.loss(bb, x)
    m = bb.last_mask
    assert m.shape == (3, 4, 4) and torch.equal(m[:, ::2, ::2].repeat_interleave(2, 1).repeat_interleave(2, 2), m)


def test_token_masking_learns():
    torch.manual_seed(0)
    bb = TinyTokenViT(patch=4)
    obj = _setup(MIM(decoder="transformer", decoder_dim=16), bb, 16)
    x = load_data("digits", img_size=16).images[:32]
    losses = train(obj, bb, [x[:16], x[16:]], 60, lr=3e-3)
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])


@pytest.mark.parametrize("backbone", ["cnn", "vit"])
def test_hierarchical_decoder_sends_gradient_to_every_stage(backbone):
    torch.manual_seed(0)
    bb = Recorder(TinyCNN() if backbone == "cnn" else FakeBackbone("vit"), cut=True)
    obj = _setup(MIM(decoder="hierarchical"), bb, 16)
    obj.loss(bb, fake_images(2, 16, 0)).backward()
    for i, f in enumerate(bb.feats):
        assert f.grad is not None and f.grad.abs().sum() > 0, f"stage {i} gets no gradient from the decoder"
    # the simple decoder reads only the last stage (so the check above can fail)
    bb2 = Recorder(TinyCNN(), cut=True)
    obj2 = _setup(MIM(decoder="simple"), bb2, 16)
    obj2.loss(bb2, fake_images(2, 16, 0)).backward()
    assert bb2.feats[0].grad is None and bb2.feats[-1].grad is not None


def test_hierarchical_decoder_is_eq3():
    """Linear(sum_i Upsample(Conv_i(F_i))), whatever order it is computed in."""
    torch.manual_seed(0)
    bb = TinyCNN()
    dec = HierarchicalDecoder(bb.feature_info, 3, dim=8)
    feats = bb(fake_images(2, 16, 0))
    literal = sum(
        F.interpolate(conv(f), size=(16, 16), mode="bilinear", align_corners=False) if f.shape[-1] != 16 else conv(f)
        for f, conv in zip(feats, dec.align)
    )
    literal = dec.linear(literal)
    assert torch.allclose(dec(feats, (16, 16)), literal, atol=1e-5)


@pytest.mark.parametrize("decoder", ["hierarchical", "simple", "transformer"])
@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_decoders_reconstruct_full_resolution(decoder, kind):
    bb = TinyCNN() if kind == "cnn" else FakeBackbone("vit")
    obj = _setup(MIM(decoder=decoder), bb, 16)
    x = fake_images(2, 16, 0)
    out, pix = obj.reconstruct(bb, x)
    assert out.shape == x.shape and pix.shape == (2, 1, 16, 16)
    assert torch.equal(out[~pix.expand_as(x)], x[~pix.expand_as(x)])


def test_score_is_repeatable_and_uses_the_same_masks_for_every_architecture():
    x = fake_images(4, 16, 0)
    masks = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        bb = TinyTokenViT()
        obj = _setup(MIM(seed=5), bb, 16)
        s1 = obj.score(bb, x)
        m1 = bb.last_mask.clone()
        torch.manual_seed(123)  # the global RNG does not matter
        assert obj.score(bb, x) == s1
        assert torch.equal(bb.last_mask, m1)
        masks.append(m1)
    assert torch.equal(masks[0], masks[1])
    obj_other = _setup(MIM(seed=6), bb, 16)
    obj_other.score(bb, x)
    assert not torch.equal(bb.last_mask, masks[0])


def test_score_ranks_a_trained_backbone_above_an_untrained_one(objectives):
    data = load_data("digits", img_size=16)
    x = data.images[:64]
    torch.manual_seed(0)
    trained, fresh = TinyCNN(), TinyCNN()
    obj = create_objective("mim")
    obj.setup(trained.feature_info, in_chans=3, img_size=16)
    before = obj.score(trained, x)
    train(obj, trained, [x[:32], x[32:]], 30)
    trained.eval()
    assert obj.score(trained, x) > before
    assert obj.score(trained, x) > obj.score(fresh.eval(), x)


@pytest.mark.parametrize("decoder", ["hierarchical", "simple", "transformer"])
def test_loss_falls_on_digits(objectives, decoder):
    data = load_data("digits", img_size=16)
    batches = [data.images[i : i + 32] for i in range(0, 128, 32)]
    torch.manual_seed(0)
    bb = TinyCNN()
    obj = create_objective("mim", decoder=decoder)
    obj.setup(bb.feature_info, in_chans=3, img_size=16)
    losses = train(obj, bb, batches, 40)
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])


def test_images_not_divisible_into_patches_are_refused():
    bb = TinyCNN()
    obj = _setup(MIM(patch_size=5), bb, 16)
    with pytest.raises(ConfigError, match="patch"):
        obj.loss(bb, fake_images(2, 16, 0))
