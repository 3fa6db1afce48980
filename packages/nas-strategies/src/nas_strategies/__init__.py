"""nas-strategies: search strategies of the label-free NAS ecosystem.

Registered through the ``nas`` entry point (create them with ``nas_core.create_strategy``):

``darts`` / ``darts_2nd``
    bilevel differentiable search (first / second order) on any differentiable supernet and objective.
``evolution``
    one-shot SPOS supernet training + top-k evolutionary (or aging) search under cost constraints.
``gradient_ascent``
    UP-NAS: multi-proxy estimator over an arch2vec embedding and gradient ascent on the unified proxy.
``random``
    random search with the same fitness options.

Heavy names are imported lazily, so ``import nas_strategies`` (and the plugin) never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas_core import lazy_exports

from .__about__ import __version__

_LAZY = {
    "DartsSearch": "._darts",
    "unrolled_arch_grads": "._darts",
    "count_skips": "._darts",
    "EvolutionSearch": "._search",
    "RandomSearch": "._search",
    "GradientAscentSearch": "._upnas",
    "ProxyScoreCache": "._upnas",
    "UPNAS_PROXIES": "._upnas",
    "ScoreNormalizer": "._upnas",
    "unified_scores": "._upnas",
    "ArchAutoencoder": "._vgae",
    "GraphBatch": "._vgae",
    "GraphCodec": "._vgae",
    "MultiProxyEstimator": "._vgae",
    "EstimatorEnsemble": "._vgae",
    "encode_architectures": "._vgae",
    "reconstruction_accuracy": "._vgae",
    "train_autoencoder": "._vgae",
    "train_estimator": "._vgae",
    "CandidatePool": "._pool",
    "Constraints": "._constraints",
    "TableFitness": "._fitness",
    "ProxyFitness": "._fitness",
    "ObjectiveFitness": "._fitness",
    "recalibrate_bn": "._bn",
    "OneShotTrainer": "._oneshot",
}

__all__ = ["__version__", *sorted(_LAZY)]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from ._bn import recalibrate_bn
    from ._constraints import Constraints
    from ._fitness import ObjectiveFitness, ProxyFitness, TableFitness
    from ._pool import CandidatePool
    from ._darts import DartsSearch, count_skips, unrolled_arch_grads
    from ._oneshot import OneShotTrainer
    from ._search import EvolutionSearch, RandomSearch
    from ._upnas import GradientAscentSearch, ProxyScoreCache, ScoreNormalizer, UPNAS_PROXIES, unified_scores
    from ._vgae import (
        ArchAutoencoder,
        EstimatorEnsemble,
        GraphBatch,
        GraphCodec,
        MultiProxyEstimator,
        encode_architectures,
        reconstruction_accuracy,
        train_autoencoder,
        train_estimator,
    )
