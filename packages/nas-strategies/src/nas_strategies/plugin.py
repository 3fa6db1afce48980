"""The nas plugin of nas-strategies: registers darts, evolution, gradient_ascent and random.

Factories are lazy ``"module:attr"`` strings, so listing plugins never imports torch.
"""

from __future__ import annotations

from typing import Any

from nas_core import hookimpl

_ONE_SHOT = {"objective": frozenset({"single_path"}), "proxy": frozenset(), "table": frozenset()}

# options that make a run take seconds (the composition tests build every registered combination with them)
_SMOKE_DARTS = {"epochs": 4, "batch_size": 4, "steps_per_epoch": 4, "w_lr": 0.05}
# (one-shot training on random paths needs ~80 steps before a pretext loss falls)
_SMOKE_ONE_SHOT = {"train_epochs": 14, "batch_size": 4, "optimizer": "adamw", "lr": 5e-3, "weight_decay": 0.0,
                   "eval_batches": 1, "calib_batches": 1}


@hookimpl
def nas_register_strategies(registry: Any) -> None:
    registry.add(
        "darts",
        "nas_strategies._darts:DartsSearch",
        aliases=("darts_v1",),
        summary="bilevel differentiable search, first or second order, on any differentiable supernet and objective",
        needs={"objective": frozenset({"differentiable"})},
        paper="Liu et al., DARTS: Differentiable Architecture Search, ICLR 2019 (label-free: MAE-NAS, UnNAS)",
        smoke=dict(_SMOKE_DARTS),
    )
    registry.add(
        "darts_2nd",
        "nas_strategies._darts:DartsSearch",
        aliases=("darts_v2",),
        defaults={"unrolled": True},
        summary="DARTS with the second-order (unrolled) architecture gradient",
        needs={"objective": frozenset({"differentiable"})},
        paper="Liu et al., DARTS: Differentiable Architecture Search, ICLR 2019",
        smoke=dict(_SMOKE_DARTS),
    )
    registry.add(
        "evolution",
        "nas_strategies._search:EvolutionSearch",
        aliases=("spos", "evolutionary"),
        summary="one-shot SPOS supernet training + top-k evolutionary search (or aging evolution) under cost constraints",
        needs=dict(_ONE_SHOT),
        paper="Guo et al., SPOS, ECCV 2020; MaskTAS evolutionary search; Real et al., regularized evolution, AAAI 2019",
        smoke={**_SMOKE_ONE_SHOT, "population": 4, "generations": 2, "parents": 2},
    )
    registry.add(
        "gradient_ascent",
        "nas_strategies._upnas:GradientAscentSearch",
        aliases=("upnas", "up_nas"),
        summary="UP-NAS: multi-proxy estimator on an arch2vec embedding, gradient ascent on the unified proxy",
        needs={"none": frozenset(), "proxy": frozenset(), "table": frozenset()},
        paper="Huang et al., UP-NAS: Unified Proxy for Neural Architecture Search, CVPR-W 2024",
        smoke={"num_samples": 16, "pretrain_samples": 32, "vgae_epochs": 2, "mpe_epochs": 3, "mpe_batch_size": 4,
               "num_starts": 2, "max_steps": 50, "rescore_top": 2, "proxy_batch_size": 8},
    )
    registry.add(
        "random",
        "nas_strategies._search:RandomSearch",
        aliases=("random_search",),
        summary="random search under cost constraints with any fitness (objective one-shot, proxy, table)",
        needs=dict(_ONE_SHOT),
        paper="Li & Talwalkar, Random Search and Reproducibility for NAS, UAI 2019",
        smoke={**_SMOKE_ONE_SHOT, "budget": 4, "chunk": 2},
    )
