"""The nas plugin of nas-strategies: registers darts, evolution, gradient_ascent and random.

Factories are lazy ``"module:attr"`` strings, so listing plugins never imports torch.
"""

from __future__ import annotations

from typing import Any

from nas_core import hookimpl

_ONE_SHOT = {"objective": frozenset({"single_path"}), "proxy": frozenset(), "table": frozenset()}


@hookimpl
def nas_register_strategies(registry: Any) -> None:
    registry.add(
        "darts",
        "nas_strategies._darts:DartsSearch",
        aliases=("darts_v1",),
        summary="bilevel differentiable search, first or second order, on any differentiable supernet and objective",
        needs={"objective": frozenset({"differentiable"})},
        paper="Liu et al., DARTS: Differentiable Architecture Search, ICLR 2019 (label-free: MAE-NAS, UnNAS)",
    )
    registry.add(
        "darts_2nd",
        "nas_strategies._darts:DartsSearch",
        aliases=("darts_v2",),
        defaults={"unrolled": True},
        summary="DARTS with the second-order (unrolled) architecture gradient",
        needs={"objective": frozenset({"differentiable"})},
        paper="Liu et al., DARTS: Differentiable Architecture Search, ICLR 2019",
    )
    registry.add(
        "evolution",
        "nas_strategies._search:EvolutionSearch",
        aliases=("spos", "evolutionary"),
        summary="one-shot SPOS supernet training + top-k evolutionary search (or aging evolution) under cost constraints",
        needs=dict(_ONE_SHOT),
        paper="Guo et al., SPOS, ECCV 2020; MaskTAS evolutionary search; Real et al., regularized evolution, AAAI 2019",
    )
    registry.add(
        "gradient_ascent",
        "nas_strategies._upnas:GradientAscentSearch",
        aliases=("upnas", "up_nas"),
        summary="UP-NAS: multi-proxy estimator on an arch2vec embedding, gradient ascent on the unified proxy",
        needs={"none": frozenset(), "proxy": frozenset(), "table": frozenset()},
        paper="Huang et al., UP-NAS: Unified Proxy for Neural Architecture Search, CVPR-W 2024",
    )
    registry.add(
        "random",
        "nas_strategies._search:RandomSearch",
        aliases=("random_search",),
        summary="random search under cost constraints with any fitness (objective one-shot, proxy, table)",
        needs=dict(_ONE_SHOT),
        paper="Li & Talwalkar, Random Search and Reproducibility for NAS, UAI 2019",
    )
