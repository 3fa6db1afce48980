"""Registers the spaces of nas-spaces (lazy factories: importing this module does not import torch)."""

from __future__ import annotations

from typing import Any

from nas_core import hookimpl

_BOTH = frozenset({"differentiable", "single_path"})
# options for a seconds-long run (the composition tests and `nas` smoke checks read them)
_SMOKE_DARTS = {"channels": 4, "layers": 3, "search_channels": 4, "search_layers": 3}
_SMOKE_VIT = {"img_size": 32, "patch_size": 4, "embed_dims": [16, 24], "depths": [2, 3], "num_heads": [1, 2],
              "mlp_ratios": [2.0, 3.0], "head_dim": 8, "feature_stages": 2, "num_classes": 10}


@hookimpl
def nas_register_spaces(registry: Any) -> None:
    registry.add(
        "nb201",
        "nas_spaces._nb201:NB201Space",
        aliases=("nasbench201", "nas_bench_201", "nats_tss"),
        summary="NAS-Bench-201 cell space: 5 ops on 6 edges, 15625 cells, official C=16 N=5 network",
        capabilities=_BOTH | {"enumerable"},
        smoke={"channels": 4, "num_cells": 1},
        paper="Dong & Yang, NAS-Bench-201, ICLR 2020 (arXiv:2001.00326)",
    )
    registry.add(
        "darts",
        "nas_spaces._darts:DartsSpace",
        aliases=("darts_s0",),
        summary="DARTS CNN cell space (S0, 8 ops, 14 edges, normal+reduce); PC-DARTS supernet option; CIFAR/ImageNet networks",
        capabilities=_BOTH,
        smoke=_SMOKE_DARTS,
        paper="Liu et al., DARTS, ICLR 2019 (arXiv:1806.09055); Xu et al., PC-DARTS, ICLR 2020 (arXiv:1907.05737)",
    )
    _rdarts = "Zela et al., Understanding and Robustifying DARTS, ICLR 2020 (arXiv:1909.09656)"
    for preset, what in (
        ("s1", "R-DARTS S1: a per-edge pair of ops (as released with the paper)"),
        ("s2", "R-DARTS S2: skip_connect / sep_conv_3x3 on every edge"),
        ("s3", "R-DARTS S3: none / skip_connect / sep_conv_3x3 on every edge"),
        ("s4", "R-DARTS S4: noise / sep_conv_3x3 on every edge"),
    ):
        registry.add(
            f"darts_{preset}",
            "nas_spaces._darts:DartsSpace",
            summary=what,
            defaults={"preset": preset},
            capabilities=_BOTH,
            smoke=_SMOKE_DARTS,
            paper=_rdarts,
        )
    _autoformer = "Chen et al., AutoFormer, ICCV 2021 (arXiv:2107.00651); searched label-free by MaskTAS"
    registry.add(
        "vit",
        "nas_spaces._vit:VitSpace",
        summary="AutoFormer-style ViT supernet: elastic embed dim, depth, per-layer heads and MLP ratio (weight entanglement)",
        capabilities=frozenset({"single_path", "patch_mask"}),
        smoke=_SMOKE_VIT,
        paper=_autoformer,
    )
    for preset in ("tiny", "small", "base"):
        registry.add(
            f"autoformer_{preset}",
            "nas_spaces._vit:VitSpace",
            summary=f"AutoFormer supernet-{preset} choice sets (ViT, 224x224, patch 16)",
            defaults={"preset": preset},
            capabilities=frozenset({"single_path", "patch_mask"}),
            smoke=_SMOKE_VIT,
            paper=_autoformer,
        )
