"""The strategies' shared machinery under one name (kept for imports that predate the split; new code
imports from the module of its concern): ``_helpers`` (seeds, hashes, names, accepted keywords),
``_batches`` (image batches), ``_pool`` (candidate pools), ``_constraints`` (cost limits), ``_fitness``
(table, proxy and objective fitness), ``_bn`` (BN recalibration), ``_distributed`` (sharded evaluation,
all-reduces) and ``_results`` (result assembly)."""

from __future__ import annotations

from ._batches import first_images, num_classes_for, proxy_images, split_batch
from ._bn import recalibrate_bn
from ._constraints import Constraints
from ._distributed import broadcast_module, evaluate_sharded, reduce_tensors, sync_buffers, sync_grads
from ._fitness import ObjectiveFitness, ProxyFitness, TableFitness, build_loss_fn, objective_loss, score_with_proxies
from ._helpers import accepted_kwargs, arch_seed, fingerprint, seeded, space_name
from ._pool import MUTATION_HINT_ALIASES, CandidatePool
from ._results import make_result

__all__ = [
    "CandidatePool",
    "Constraints",
    "TableFitness",
    "ProxyFitness",
    "ObjectiveFitness",
    "arch_seed",
    "fingerprint",
    "first_images",
    "proxy_images",
    "split_batch",
    "evaluate_sharded",
    "sync_grads",
    "sync_buffers",
    "broadcast_module",
    "recalibrate_bn",
    "space_name",
    "make_result",
    "num_classes_for",
    "build_loss_fn",
    "accepted_kwargs",
    "seeded",
    "reduce_tensors",
    "score_with_proxies",
    "objective_loss",
    "MUTATION_HINT_ALIASES",
]
