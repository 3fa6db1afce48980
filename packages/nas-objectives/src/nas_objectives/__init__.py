"""nas-objectives: label-free search objectives for neural architecture search.

Registered through the ``nas`` entry point (``nas_core.create_objective("mim")``):

``mim`` (MAE-NAS/SimMIM, hierarchical decoder), ``rotation``, ``colorization``, ``jigsaw`` (UnNAS),
``distill`` (MaskTAS), and the labelled baselines ``supervised`` and ``random_labels`` (RLNAS).

Importing this package is cheap; the torch-heavy classes load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas_core import lazy_exports

from .__about__ import __version__

_LAZY = {
    "MIM": "._mim",
    "masked_reconstruction_loss": "._mim",
    "Rotation": "._pretext",
    "Jigsaw": "._pretext",
    "hamming_permutations": "._pretext",
    "min_hamming_distance": "._pretext",
    "Colorization": "._color",
    "ABBins": "._color",
    "ab_bins": "._color",
    "rgb_to_lab": "._color",
    "lab_to_rgb": "._color",
    "Distill": "._distill",
    "TeacherEncoder": "._distill",
    "TimmFeatures": "._distill",
    "build_teacher": "._distill",
    "pretrain_teacher": "._distill",
    "save_teacher": "._distill",
    "load_teacher": "._distill",
    "relation_consistency": "._distill",
    "DEFAULT_TEACHER": "._distill",
    "Supervised": "._supervised",
    "RandomLabels": "._supervised",
    "HierarchicalDecoder": "._decoders",
    "SimpleDecoder": "._decoders",
    "TransformerDecoder": "._decoders",
    "build_decoder": "._decoders",
    "random_patch_mask": "._common",
    "masked_forward": "._common",
    "feature_info_of": "._common",
    "content_key": "._common",
    "normalize": "._common",
    "default_patch_size": "._common",
}

__all__ = ["__version__", *sorted(_LAZY)]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from ._color import ABBins, Colorization, ab_bins, lab_to_rgb, rgb_to_lab
    from ._common import content_key, default_patch_size, feature_info_of, masked_forward, normalize, random_patch_mask
    from ._decoders import HierarchicalDecoder, SimpleDecoder, TransformerDecoder, build_decoder
    from ._distill import (
        DEFAULT_TEACHER,
        Distill,
        TeacherEncoder,
        TimmFeatures,
        build_teacher,
        load_teacher,
        pretrain_teacher,
        relation_consistency,
        save_teacher,
    )
    from ._mim import MIM, masked_reconstruction_loss
    from ._pretext import Jigsaw, Rotation, hamming_permutations, min_hamming_distance
    from ._supervised import RandomLabels, Supervised
