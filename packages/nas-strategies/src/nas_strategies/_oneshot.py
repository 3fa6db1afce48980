"""One-shot supernet training by uniform single-path sampling (SPOS), with any objective.

Each step samples one path uniformly from the space (the same path on every rank: the path stream is
seeded identically), trains the shared weights and the objective's heads on that path, and averages
gradients over ranks. Used by ``evolution`` and ``random`` when the fitness is an objective.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn

from nas_core import ConfigError, IncompatibleError, SearchSpace, split_dataset

from ._batches import first_images, split_batch
from ._distributed import broadcast_module, sync_buffers, sync_grads
from ._pool import CandidatePool

__all__ = ["OneShotTrainer"]


class OneShotTrainer:
    """Owns the supernet, the objective's heads, the optimiser and the schedule of a SPOS run."""

    def __init__(
        self,
        space: SearchSpace,
        objective: Any,
        data: Any,
        context: Any,
        *,
        pool: CandidatePool,
        epochs: int,
        batch_size: int,
        steps_per_epoch: int | None,
        lr: float,
        momentum: float,
        weight_decay: float,
        grad_clip: float | None,
        optimizer: str,
        val_fraction: float,
        eval_batches: int,
        calib_batches: int,
        supernet_kwargs: dict[str, Any] | None,
        stream: str,
    ):
        if data is None:
            raise ConfigError("one-shot training with an objective needs image data (data=...)")
        self.space, self.objective, self.context, self.pool = space, objective, context, pool
        self.epochs, self.batch_size, self.steps_per_epoch = int(epochs), int(batch_size), steps_per_epoch
        self.grad_clip = grad_clip
        self.stream = stream
        sn = space.supernet(**(supernet_kwargs or {}))
        if "single_path" not in getattr(sn, "capabilities", ()):
            raise IncompatibleError(
                f"space '{space.registered_name or space.name}' built a supernet without the single_path capability; "
                f"one-shot evolution/random search with an objective needs set_active()"
            )
        self.supernet = context.to_device(sn)
        self.train_set, self.heldout_set = split_dataset(data, val_fraction=val_fraction, seed=context.seed)
        in_chans = int(getattr(data, "in_chans", 3))
        img_size = int(getattr(data, "img_size", 32))
        objective.setup(self.supernet.feature_info, in_chans=in_chans, img_size=img_size)
        objective.to(context.device)
        broadcast_module(self.supernet, context)
        broadcast_module(objective, context)
        arch_ids = {id(p) for p in self.supernet.arch_parameters()} if hasattr(self.supernet, "arch_parameters") else set()
        self.params = [p for p in self.supernet.parameters() if p.requires_grad and id(p) not in arch_ids]
        self.params += [p for p in objective.parameters() if p.requires_grad]
        opt = optimizer.lower()
        if opt == "sgd":
            self.opt: torch.optim.Optimizer = torch.optim.SGD(self.params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        elif opt == "adamw":
            self.opt = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)
        else:
            raise ConfigError(f"optimizer: '{optimizer}' is not supported (choose sgd or adamw)")
        self.loader = context.loader(self.train_set, self.batch_size, stream=f"{stream}/data")
        n_steps = len(self.loader) if steps_per_epoch is None else min(len(self.loader), int(steps_per_epoch))
        if n_steps < 1:
            raise ConfigError("one-shot training: no training step per epoch (more data or a smaller batch_size)")
        self.steps = n_steps
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(1, self.epochs * n_steps), eta_min=0.0)
        self.with_labels = bool(getattr(objective, "requires_labels", False))
        # fixed batches for candidate evaluation: calibration (train split) and held-out scoring
        self.calib, _ = self._fixed(self.train_set, calib_batches, 1)
        self.heldout, self.heldout_targets = self._fixed(self.heldout_set, eval_batches, 2)
        self.global_step = 0

    def _fixed(self, subset: Any, n_batches: int, salt: int) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Fixed batches of a subset (and their labels when the data yields them)."""
        if n_batches <= 0:
            return [], None
        n = min(len(subset), n_batches * self.batch_size)
        images, targets = first_images(subset, n, self.context.seed + salt)
        batches = [self.context.to_device(b) for b in images.split(self.batch_size)]
        labels = None if targets is None else [self.context.to_device(t) for t in targets.split(self.batch_size)]
        return batches, labels

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "supernet": self.supernet.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "global_step": self.global_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.objective.load_state_dict(state["objective"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.global_step = int(state["global_step"])

    # -- training ---------------------------------------------------------------------------------
    def _batches(self) -> Iterator[Any]:
        for i, batch in enumerate(self.loader):
            if i >= self.steps:
                return
            yield batch

    def train_epoch(self, epoch: int, rng: np.random.Generator) -> dict[str, float]:
        ctx = self.context
        self.supernet.train()
        self.objective.train()
        losses = []
        for batch in ctx.progress(self._batches(), total=self.steps, desc=f"one-shot epoch {epoch}"):
            x, y = split_batch(batch)
            x = ctx.to_device(x)
            y = ctx.to_device(y) if (y is not None and self.with_labels) else None
            arch = self.pool.sample(rng)
            self.supernet.set_active(arch)
            with ctx.autocast():
                loss = self.objective.loss(self.supernet, x, y) if y is not None else self.objective.loss(self.supernet, x)
            value = ctx.check_finite(loss, "one-shot loss", epoch=epoch, step=self.global_step)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            sync_grads(self.params, ctx)
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            self.opt.step()
            self.sched.step()
            ctx.log_step(self.global_step, {"loss": value, "lr": self.opt.param_groups[0]["lr"]})
            self.global_step += 1
            losses.append(value)
        sync_buffers(self.supernet, ctx)
        sync_buffers(self.objective, ctx)
        mean = torch.tensor([float(np.mean(losses)) if losses else math.nan], dtype=torch.float64, device=self.context.device)
        self.context.all_reduce_mean(mean)  # the same history on every rank
        return {"loss": float(mean[0]), "lr": self.opt.param_groups[0]["lr"]}
