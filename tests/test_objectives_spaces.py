"""nas-objectives on the real nas-spaces backbones: every objective trains and scores the nb201 and
DARTS supernets (CNN pyramids) and the ViT supernet (token masking through its patch-mask support)."""

from __future__ import annotations

import math

import pytest
import torch

nas_spaces = pytest.importorskip("nas_spaces")
pytest.importorskip("nas_objectives")

from nas_core import create_objective, create_space  # noqa: E402

IMG = 16
OBJECTIVES = {
    "mim": {},
    "rotation": {},
    "colorization": {},
    "jigsaw": {},
    "distill": {"teacher": "test_vit", "pretrain_steps": 0},  # random weights on purpose: a shape test
    "supervised": {},
    "random_labels": {},
}


def _supernet(kind):
    if kind == "nb201":
        return create_space("nb201", channels=4, num_cells=1, img_size=IMG).supernet()
    if kind == "darts":
        return create_space("darts", img_size=IMG).supernet(channels=4, layers=3)
    space = create_space(
        "vit", embed_dims=[16, 24], depths=[2], num_heads=[2], mlp_ratios=[2.0], img_size=IMG, patch_size=4,
        num_classes=10, feature_stages=2,
    )
    return space.supernet()


@pytest.fixture(scope="module", params=["nb201", "darts", "vit"])
def supernet(request):
    torch.manual_seed(0)
    try:
        return _supernet(request.param)
    except TypeError as exc:  # option names of nas-spaces changed
        pytest.fail(f"cannot build the {request.param} supernet for the composition test: {exc}")


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_trains_and_scores_a_real_supernet(supernet, name):
    obj = create_objective(name, **OBJECTIVES[name])
    obj.setup(supernet.feature_info, in_chans=3, img_size=IMG)
    x = torch.rand(4, 3, IMG, IMG)
    y = torch.tensor([0, 1, 2, 3]) if obj.requires_labels else None
    supernet.train()
    obj.train()
    loss = obj.loss(supernet, x, y)
    assert loss.dim() == 0 and torch.isfinite(loss)
    supernet.zero_grad(set_to_none=True)
    loss.backward()
    grads = [p.grad for p in supernet.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    supernet.eval()
    s1, s2 = obj.score(supernet, x), obj.score(supernet, x)
    assert s1 == s2 and math.isfinite(s1)


def test_mim_masks_vit_tokens():
    sn = _supernet("vit")
    assert getattr(sn, "supports_patch_mask", False)
    seen = {}
    original = sn.forward

    def spy(x, *args, mask=None, **kwargs):
        seen["mask"] = mask
        return original(x, *args, mask=mask, **kwargs)

    sn.forward = spy
    obj = create_objective("mim")
    obj.setup(sn.feature_info, in_chans=3, img_size=IMG)
    obj.loss(sn, torch.rand(2, 3, IMG, IMG)).backward()
    m = seen["mask"]
    assert m is not None and m.shape == (2, IMG // 4, IMG // 4) and m.dtype == torch.bool
    assert sn.mask_token.grad is not None and float(sn.mask_token.grad.abs().sum()) > 0
