"""Batch-norm recalibration: re-estimating running statistics for one sub-network (SPOS)."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn as nn

__all__ = ["recalibrate_bn"]


@contextlib.contextmanager
def _bn_cumulative(module: nn.Module) -> Iterator[list[nn.modules.batchnorm._BatchNorm]]:
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in bns]
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        yield bns
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom


@torch.no_grad()
def recalibrate_bn(module: nn.Module, batches: Sequence[torch.Tensor], forward: Callable[[torch.Tensor], Any]) -> int:
    """Reset batch-norm running statistics and re-estimate them on ``batches`` (SPOS's per-candidate BN
    recalibration). Returns the number of BN layers recalibrated (0: nothing to do)."""
    was_training = module.training
    with _bn_cumulative(module) as bns:
        if bns:
            module.train()
            for x in batches:
                forward(x)
    module.train(was_training)
    return len(bns)
