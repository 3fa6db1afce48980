"""The nas-objectives plugin: registers every objective with a lazy ``"module:attr"`` factory, so listing
plugins never imports torch. It imports nothing but ``nas_core.hookimpl``."""

from nas_core import hookimpl


@hookimpl
def nas_register_objectives(registry):
    registry.add(
        "mim",
        "nas_objectives._mim:MIM",
        aliases=("mae_nas", "simmim"),
        summary="masked image modelling, hierarchical multi-scale decoder (MAE-NAS), or simple/transformer",
        requires_labels=False,
        paper="MAE-NAS (arXiv:2311.12086) eq. 2-3; SimMIM (Xie et al., CVPR 2022)",
    )
    registry.add(
        "rotation",
        "nas_objectives._pretext:Rotation",
        summary="4-way rotation prediction (UnNAS)",
        requires_labels=False,
        paper="UnNAS (Liu et al., ECCV 2020); Gidaris et al., ICLR 2018",
    )
    registry.add(
        "colorization",
        "nas_objectives._color:Colorization",
        aliases=("colorisation",),
        summary="grayscale in, per-pixel classification over quantised ab bins (UnNAS)",
        requires_labels=False,
        paper="UnNAS (Liu et al., ECCV 2020); Zhang et al., ECCV 2016",
    )
    registry.add(
        "jigsaw",
        "nas_objectives._pretext:Jigsaw",
        summary="jigsaw permutation classification, 2x2/24 or 3x3/max-Hamming set (UnNAS)",
        requires_labels=False,
        # a 2-permutation task learns within a seconds-long run (24 classes need a few hundred steps)
        smoke={"num_permutations": 2},
        paper="UnNAS (Liu et al., ECCV 2020); Noroozi & Favaro, ECCV 2016",
    )
    registry.add(
        "distill",
        "nas_objectives._distill:Distill",
        aliases=("masktas",),
        summary="masked distillation from a frozen teacher, teacher-consistency score (MaskTAS)",
        requires_labels=False,
        # a seconds-long run: a 3-block, 32-wide ViT teacher instead of ViT-S, pre-trained for 3 steps, not cached
        smoke={"teacher": "vit_tiny_patch16_224", "teacher_kwargs": {"depth": 3, "embed_dim": 32, "num_heads": 2},
               "pretrain_steps": 3, "pretrain_batch_size": 16, "teacher_cache": ""},
        paper="MaskTAS eq. 9-11 (loss), eq. 13-16 (score)",
    )
    registry.add(
        "supervised",
        "nas_objectives._supervised:Supervised",
        aliases=("ce",),
        summary="cross-entropy with labels (the supervised NAS baseline)",
        requires_labels=True,
        paper="DARTS (Liu et al., ICLR 2019)",
    )
    registry.add(
        "random_labels",
        "nas_objectives._supervised:RandomLabels",
        aliases=("rlnas",),
        summary="cross-entropy on fixed random labels hashed from image content (RLNAS)",
        requires_labels=True,
        paper="RLNAS (Zhang et al., CVPR 2021)",
    )
