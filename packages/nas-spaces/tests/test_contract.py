"""The nas-core contract suite over every space this package registers (timm style)."""

from __future__ import annotations

import pytest

from nas_core import create_space, get_entry, list_spaces
from nas_core.testing import check_space

OURS = [n for n in list_spaces() if get_entry("space", n).origin.dist == "nas-spaces"]

# tiny configurations so the whole suite runs in seconds on 2 CPU cores
TINY = {
    "nb201": dict(channels=4, num_cells=1),
    "darts": dict(channels=4, layers=3, search_channels=4, search_layers=3),
    "vit": dict(img_size=32, patch_size=4, embed_dims=[16, 24], depths=[2, 3], num_heads=[1, 2], mlp_ratios=[2.0, 3.0],
                head_dim=8, feature_stages=2, num_classes=10),
    "autoformer": dict(img_size=32, patch_size=4, embed_dims=[16, 24], depths=[2, 3], num_heads=[1, 2],
                       mlp_ratios=[2.0, 3.0], head_dim=8, feature_stages=2, num_classes=10),
}


def _tiny(name: str) -> dict:
    for prefix, cfg in TINY.items():
        if name == prefix or name.startswith(prefix + "_"):
            return dict(cfg)
    return dict(TINY.get(name.split("_")[0], {}))


def test_every_family_is_registered():
    assert {"nb201", "darts", "darts_s1", "darts_s2", "darts_s3", "darts_s4", "vit", "autoformer_tiny", "autoformer_small", "autoformer_base"} <= set(OURS)


@pytest.mark.parametrize("name", OURS)
def test_space_contract(name):
    space = create_space(name, **_tiny(name))
    check_space(space, img_size=32, samples=4)


@pytest.mark.parametrize("name", OURS)
def test_entry_metadata_matches_the_space(name):
    entry = get_entry("space", name)
    space = create_space(name, **_tiny(name))
    assert set(entry.metadata["capabilities"]) == set(space.capabilities)
    assert entry.summary and entry.metadata.get("paper")
    assert create_space(name, **space.config()).config() == space.config()
