"""nas-spaces: NAS-Bench-201, the DARTS family (S0-S4, PC-DARTS) and an AutoFormer-style ViT supernet.

Spaces register through the ``nas`` entry point and are created by name::

    from nas_core import create_space

    space = create_space("nb201")
    arch = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    net = space.build(arch, num_classes=10)

Importing this package imports torch; the plugin module (``nas_spaces.plugin``) does not.
"""

from __future__ import annotations

from nas_core import lazy_exports

from .__about__ import __version__

_LAZY = {
    "NB201_OPS": "._nb201",
    "NB201_EDGES": "._nb201",
    "NB201Arch": "._nb201",
    "NB201Space": "._nb201",
    "NB201Network": "._nb201",
    "NB201Supernet": "._nb201",
    "nb201_cost": "._nb201",
    "DartsArch": "._darts_arch",
    "Genotype": "._darts_arch",
    "GENOTYPES": "._darts_arch",
    "DARTS_V1": "._darts_arch",
    "DARTS_V2": "._darts_arch",
    "PC_DARTS": "._darts_arch",
    "PC_DARTS_IMAGENET": "._darts_arch",
    "PDARTS": "._darts_arch",
    "NASNET": "._darts_arch",
    "AMOEBANET": "._darts_arch",
    "PRESETS": "._darts_arch",
    "DartsSpace": "._darts",
    "DartsNetwork": "._darts",
    "DartsSupernet": "._darts",
    "VitArch": "._vit",
    "VitSpace": "._vit",
    "VitSupernet": "._vit",
    "VitNetwork": "._vit",
    "AUTOFORMER_PRESETS": "._vit",
}

__all__ = ["__version__", *sorted(_LAZY)]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
