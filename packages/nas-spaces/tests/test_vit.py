"""The AutoFormer-style ViT space: timm parity, weight entanglement, extraction, patch masks."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from nas_core import ArchitectureError, ConfigError, create_space
from nas_spaces._common import count_macs, count_params
from nas_spaces._vit import AUTOFORMER_PRESETS, VitArch, VitNetwork, VitSpace, stage_blocks

TINY = dict(img_size=32, patch_size=4, embed_dims=[16, 24], depths=[2, 3, 4], num_heads=[1, 2], mlp_ratios=[2.0, 3.0],
            head_dim=8, feature_stages=2, num_classes=10)
VIT_TI = VitArch(192, 12, (4.0,) * 12, (3,) * 12)


def test_vit_tiny_dims_have_exactly_timms_parameter_count():
    space = create_space("autoformer_tiny")
    assert space.parse(str(VIT_TI)) == VIT_TI  # ViT-Ti is a subnet of AutoFormer-tiny
    net = space.build(VIT_TI, num_classes=1000)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    n_ref = sum(p.numel() for p in ref.parameters())
    assert count_params(net) == n_ref == space.cost(VIT_TI).params == 5_717_416
    assert isinstance(net, timm.models.vision_transformer.VisionTransformer)
    assert all(isinstance(b, timm.models.vision_transformer.Block) for b in net.blocks)
    assert sorted(k for k, _ in net.named_parameters()) == sorted(k for k, _ in ref.named_parameters())
    assert 1.2e9 < space.cost(VIT_TI).flops < 1.3e9  # "1.3G" in the AutoFormer/DeiT tables


def test_cost_matches_hooks_plus_attention_matmuls():
    space = VitSpace(**TINY)
    rng = np.random.default_rng(0)
    for a in [space.sample(rng) for _ in range(4)]:
        net = space.build(a, num_classes=10)
        assert space.cost(a).params == count_params(net)
        tokens = (32 // 4) ** 2 + 1
        attention = sum(2 * tokens * tokens * h * 8 for h in a.num_heads)
        assert space.cost(a).flops == count_macs(net, torch.zeros(1, 3, 32, 32)) + attention


@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_autoformer_presets(preset):
    published = {
        # choice sets, the paper's parameter range, and the size of the AutoFormer found in the space
        "tiny": ((192, 216, 240), (12, 13, 14), (3, 4), (3.5, 4.0), (4e6, 9e6), 5.7e6),
        "small": ((320, 384, 448), (12, 13, 14), (5, 6, 7), (3.0, 3.5, 4.0), (14e6, 34e6), 22.9e6),
        "base": ((528, 576, 624), (14, 15, 16), (8, 9, 10), (3.0, 3.5, 4.0), (42e6, 75e6), 54e6),
    }[preset]
    space = create_space(f"autoformer_{preset}")
    assert (space.embed_dims, space.depths, space.num_heads, space.mlp_ratios) == published[:4]
    assert (space.img_size, space.patch_size, space.num_classes) == (224, 16, 1000)
    assert AUTOFORMER_PRESETS[preset]["embed_dims"] == published[0]
    lo, hi = published[4]
    smallest = VitArch(min(space.embed_dims), min(space.depths), (min(space.mlp_ratios),) * min(space.depths), (min(space.num_heads),) * min(space.depths))
    largest = VitArch(max(space.embed_dims), max(space.depths), (max(space.mlp_ratios),) * max(space.depths), (max(space.num_heads),) * max(space.depths))
    p_min, p_max = space.cost(smallest).params, space.cost(largest).params
    assert 0.8 * lo < p_min < published[5] < p_max < 1.2 * hi


def test_sampled_subnet_equals_its_extracted_timm_model():
    torch.manual_seed(0)
    space = VitSpace(**TINY)
    sn = space.supernet()
    x = torch.rand(3, 3, 32, 32)
    mask = torch.rand(3, 8, 8) < 0.5
    rng = np.random.default_rng(0)
    sn.eval()
    for _ in range(4):
        a = space.sample(rng)
        net = sn.extract(a, num_classes=None).eval()
        assert isinstance(net, VitNetwork) and net.embed_dim == a.embed_dim
        with torch.no_grad():
            for m in (None, mask):
                ref = sn(x, arch=a, mask=m)
                got = net(x, mask=m)
                assert len(ref) == len(got) == 2
                for u, v in zip(ref, got):
                    assert torch.allclose(u[:, : a.embed_dim], v, atol=1e-5)
                    assert torch.all(u[:, a.embed_dim :] == 0)  # padded to the supernet width
    clf = sn.extract(a, num_classes=10)
    assert clf(x).shape == (3, 10)
    clf.reset_classifier(4)  # timm API
    assert clf(x).shape == (3, 4)


def test_weight_entanglement_uses_leading_slices():
    torch.manual_seed(0)
    space = VitSpace(**TINY)
    sn = space.supernet()
    a = VitArch(16, 2, (2.0, 3.0), (1, 2))
    sum(f.sum() for f in sn(torch.rand(2, 3, 32, 32), arch=a)).backward()
    b0, b1 = sn.blocks[0], sn.blocks[1]
    g = b0.mlp.fc1.weight.grad
    assert g[:32, :16].abs().sum() > 0 and g[32:].abs().sum() == 0 and g[:, 16:].abs().sum() == 0
    qkv = b0.attn.qkv.weight.grad.view(3, 16, 24)  # 2 heads x head_dim 8 = 16 rows per q/k/v
    assert qkv[:, :8, :16].abs().sum() > 0 and qkv[:, 8:].abs().sum() == 0
    assert b1.attn.qkv.weight.grad.view(3, 16, 24)[:, 8:16, :16].abs().sum() > 0  # layer 1 has 2 heads
    assert sn.blocks[2].mlp.fc1.weight.grad is None  # beyond the depth
    assert sn.patch_embed.proj.weight.grad[16:].abs().sum() == 0


def test_patch_mask_hides_the_masked_pixels():
    torch.manual_seed(0)
    space = VitSpace(**TINY)
    sn = space.supernet().eval()
    assert sn.supports_patch_mask and "patch_mask" in space.capabilities
    x = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[:, 2:5, 3:6] = True
    y = x.clone()
    y[:, :, 8:20, 12:24] = torch.rand(2, 3, 12, 12)  # change only pixels under masked patches
    with torch.no_grad():
        fx, fy = sn(x, mask=mask), sn(y, mask=mask)
        unmasked = sn(y)
    assert all(torch.allclose(u, v, atol=1e-6) for u, v in zip(fx, fy))
    assert not torch.allclose(fx[-1], unmasked[-1])
    assert space.build(space.sample(np.random.default_rng(0))).supports_patch_mask is False
    with pytest.raises(ConfigError, match="patches per image"):
        sn(x, mask=torch.zeros(2, 4, 4, dtype=torch.bool))


def test_feature_info_and_stages():
    space = VitSpace(**dict(TINY, feature_stages=2))
    sn = space.supernet()
    assert sn.feature_info.reduction() == [4, 4] and sn.feature_info.channels() == [24, 24]
    assert stage_blocks(12, 4) == [2, 5, 8, 11] and stage_blocks(3, 2) == [1, 2]
    net = space.build(VitArch(16, 3, (2.0,) * 3, (1,) * 3))
    assert net.feature_info.channels() == [16, 16] and [f.shape for f in net(torch.rand(1, 3, 32, 32))] == [(1, 16, 8, 8)] * 2


def test_string_form_and_errors():
    a = VitArch(16, 2, (2.0, 3.0), (1, 2))
    assert str(a) == '{"embed_dim": 16, "depth": 2, "mlp_ratio": [2.0, 3.0], "num_heads": [1, 2]}'
    assert VitArch.parse('{"embed_dim": 16, "depth": 2, "mlp_ratio": [2, 3], "num_heads": [1, 2]}') == a
    space = VitSpace(**TINY)
    cases = [
        ('{"embed_dim": 16, "depth": 2, "mlp_ratio": [2.0], "num_heads": [1, 2]}', "'mlp_ratio' has 1 entries but depth is 2"),
        ('{"embed_dim": 16, "depth": 2, "mlp_ratio": [2.0, 3.0], "num_heads": [1, 2], "heads": 3}', "unknown key 'heads'"),
        ('{"embed_dim": 16, "depth": 2, "mlp_ratio": [2.0, 3.0]}', "missing key(s) num_heads"),
        ('{"embed_dim": 16, "depth": 2, "mlp_ratio": [2.0, 3.0], "num_heads": [1, 0]}', "layer 1: num_heads 0 must be a positive int"),
        ('{"embed_dim": 16 "depth": 2}', "not a JSON dict"),
        ('{"embed_dim": 16, "depth": 2, "mlp_ratio": [2.0, 3.0], "num_heads": [1, 3]}', "vit: layer 1: num_heads 3 is not a choice of this space; valid: 1, 2"),
        ('{"embed_dim": 20, "depth": 2, "mlp_ratio": [2.0, 3.0], "num_heads": [1, 2]}', "embed_dim 20 is not a choice"),
    ]
    for text, needle in cases:
        with pytest.raises(ArchitectureError) as info:
            space.parse(text)
        assert needle in str(info.value), str(info.value)


def test_mutation_and_crossover():
    space = VitSpace(**TINY)
    rng = np.random.default_rng(0)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(20):
        m = space.mutate(a, rng)
        assert m != a
        changed = (m.embed_dim != a.embed_dim) + (m.depth != a.depth)
        if not changed:
            changed = sum(x != y for x, y in zip(m.num_heads + m.mlp_ratio, a.num_heads + a.mlp_ratio))
        assert changed == 1
        c = space.crossover(a, b, rng)
        assert c.embed_dim in (a.embed_dim, b.embed_dim) and c.depth in (a.depth, b.depth)
    # AutoFormer/MaskTAS-style: depth with probability P_d, then every block with P_m
    same = space.mutate(a, rng, depth_prob=0.0, block_prob=0.0)
    assert same == a
    many = [space.mutate(a, rng, depth_prob=1.0, block_prob=0.5) for _ in range(20)]
    assert len({m.depth for m in many}) > 1


def test_encode_decode():
    space = VitSpace(**TINY)
    a = VitArch(24, 2, (2.0, 3.0), (2, 1))
    adj, ops = space.encode(a)
    assert adj.shape == (10, 10) and space.decode(adj, ops) == a
    hole = ops.copy()  # a skipped layer followed by an active one is not a ViT
    hole[3:5] = 0
    hole[3, space.labels.index("skip")] = hole[4, space.labels.index("skip")] = 1
    hole[5:7] = 0
    hole[5, space.labels.index("heads_1")] = hole[6, space.labels.index("mlp_2.0")] = 1
    assert space.decode(adj, hole) is None


def test_config_errors():
    with pytest.raises(ConfigError, match="preset"):
        VitSpace(preset="huge")
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        VitSpace(img_size=30, patch_size=4)
    with pytest.raises(ConfigError, match="feature_stages"):
        VitSpace(**dict(TINY, feature_stages=5))
    with pytest.raises(ConfigError, match="unknown supernet option 'partial_channels'"):
        VitSpace(**TINY).supernet(partial_channels=2)


def test_graph_is_a_chain_labelled_with_heads_and_ratios():
    import nas_core

    space = nas_core.create_space("autoformer_tiny")
    arch = space.sample(nas_core.make_rng(0))
    (edges,) = space.graph(arch).values()
    assert len(edges) == arch.depth + 1
    assert [e[0] for e in edges] == [f"embed {arch.embed_dim}", *(f"L{i}" for i in range(arch.depth))]
    assert [e[1] for e in edges] == [*(f"L{i}" for i in range(arch.depth)), "head"]
    # every block edge carries that block's heads and MLP ratio (as the architecture string writes it)
    assert [e[2] for e in edges] == [f"h{h} r{float(r)!r}" for h, r in zip(arch.num_heads, arch.mlp_ratio)] + [""]
