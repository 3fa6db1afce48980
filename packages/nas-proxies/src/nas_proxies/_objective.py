"""Label-free losses for the loss-based proxies, taken from a self-supervised objective."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from nas_core import ConfigError, FeatureInfo, Objective, create_objective

from ._utils import seeded

__all__ = ["ObjectiveLoss", "objective_loss"]


class ObjectiveLoss:
    """``loss_fn(net, images) -> scalar``: the objective's loss on ``net`` (label-free).

    The objective is set up on ``net.feature_info`` (and again, with freshly seeded heads, whenever a
    network with a different ``feature_info`` comes), moved to the images' device, and run in train
    mode with torch's RNG forked and seeded from ``seed`` so its masks/rotations/permutations are the
    same every call. :func:`nas_proxies.score_all` (and every proxy) also leaves the objective as found
    (heads, batch-norm statistics, gradients, mode); called directly, the loss updates the batch-norm
    statistics of its heads like any training-mode forward. When the objective has a
    classification pretext task, :meth:`pretext_targets` exposes it so epe_nas can use its classes.
    """

    def __init__(self, objective: Objective, *, img_size: int | None = None, in_chans: int = 3, seed: int = 0):
        if not isinstance(objective, Objective):
            raise ConfigError(
                f"objective_loss needs a nas_core.Objective (or a registered objective name), got {type(objective).__name__}"
            )
        if objective.requires_labels:
            name = objective.registered_name or type(objective).__name__
            raise ConfigError(
                f"objective '{name}' needs labels; a label-free proxy needs a label-free objective. With labels, "
                f"pass targets to the proxy instead (the supervised form)"
            )
        self.objective = objective
        self.img_size = img_size
        self.in_chans = int(in_chans)
        self.seed = int(seed)
        self._feature_info: FeatureInfo | None = None

    def setup(self, net: nn.Module, img_size: int | None = None) -> None:
        """Set the objective up for ``net`` (called automatically by ``__call__``)."""
        fi = getattr(net, "feature_info", None)
        if fi is None:
            raise ConfigError(
                f"{type(net).__name__} has no feature_info; objectives build their heads from it. Use a network "
                f"built by a search space (space.build(arch, num_classes=...))"
            )
        fi = FeatureInfo.coerce(fi)
        size = int(img_size or self.img_size or 32)
        if self._feature_info == fi and self.objective.is_setup and self.objective.img_size == size:
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.objective.setup(fi, in_chans=self.in_chans, img_size=size)
        self._feature_info = fi

    def prepare(self, net: nn.Module, images: torch.Tensor) -> None:
        """Set up for ``net`` at the images' size and move the objective to their device."""
        self.setup(net, img_size=int(images.shape[-1]))
        self.objective.to(images.device)

    def __call__(self, net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        self.prepare(net, images)
        with seeded(self.seed, images.device):
            self.objective.train()
            return self.objective.loss(net, images)

    def pretext_targets(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The objective's (inputs, classes) pretext task, when it has one (seeded, repeatable)."""
        fn = getattr(self.objective, "pretext_targets", None)
        if fn is None:
            return None
        with seeded(self.seed, images.device):
            return fn(images)

    def __repr__(self) -> str:
        name = self.objective.registered_name or type(self.objective).__name__
        return f"ObjectiveLoss({name!r}, seed={self.seed})"


def objective_loss(
    objective: Objective | str,
    net: nn.Module | None = None,
    *,
    img_size: int | None = None,
    seed: int = 0,
    **objective_options: Any,
) -> ObjectiveLoss:
    """A label-free ``loss_fn(net, images)`` for the loss-based proxies.

    :param objective: an :class:`nas_core.Objective` or a registered objective name (``"rotation"``,
        ``"mim"``, ...; created with ``objective_options``).
    :param net: when given, the objective is set up on ``net.feature_info`` right away (at
        ``img_size``, default 32); otherwise on the first call.
    :param seed: seeds the objective's randomness (masks, rotations) so every call is repeatable.
    """
    if isinstance(objective, str):
        objective = create_objective(objective, **objective_options)
    elif objective_options:
        raise ConfigError(f"objective options {sorted(objective_options)} are only used with an objective name")
    loss = ObjectiveLoss(objective, img_size=img_size, seed=seed)
    if net is not None:
        loss.setup(net, img_size=img_size)
    return loss
