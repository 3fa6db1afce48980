"""The evaluation phase: train a found architecture from scratch with labels (or fine-tune an inherited subnet)."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._errors import ConfigError, DataError

__all__ = ["train_architecture", "evaluate"]


def _logits(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Networks may return logits, or (logits, auxiliary logits) in training mode (DARTS evaluation nets)."""
    if isinstance(out, (tuple, list)):
        return out[0], (out[1] if len(out) > 1 and isinstance(out[1], torch.Tensor) else None)
    if not isinstance(out, torch.Tensor):
        raise ConfigError("the built network does not return logits; build it with num_classes=...")
    return out, None


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, context: Any) -> tuple[float, float]:
    """(top-1 accuracy in %, mean cross-entropy) over a labelled loader."""
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    for images, labels in loader:
        images, labels = context.to_device(images), context.to_device(labels)
        with context.autocast():
            logits, _ = _logits(model(images))
        loss_sum += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
        correct += int((logits.argmax(-1) == labels).sum())
        total += int(labels.numel())
    if total == 0:
        raise DataError("the validation split is empty; use more data or a larger val_fraction")
    return 100.0 * correct / total, loss_sum / total


def train_architecture(
    model: nn.Module,
    data: Any,
    context: Any,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 3e-4,
    grad_clip: float = 5.0,
    aux_weight: float = 0.4,
    val_fraction: float = 0.2,
    label_smoothing: float = 0.0,
) -> dict[str, Any]:
    """Train ``model`` (a classifier from ``space.build(arch, num_classes=...)``) on labelled ``data`` with SGD + cosine,
    checkpointing every epoch (resumable), and return accuracy/loss history and the final validation accuracy."""
    from ._data import split_dataset

    if not getattr(data, "has_labels", False):
        raise DataError("training needs labelled data: load it with labels=True (nas train loads it so)")
    if epochs < 1:
        raise ConfigError(f"epochs: must be >= 1, got {epochs}")
    train_set, val_set = split_dataset(data, val_fraction, seed=context.seed)
    bs = min(batch_size, len(train_set) // max(1, context.world_size))
    train_loader = context.loader(train_set, bs, shuffle=True, drop_last=True, stream="train")
    val_loader = context.loader(val_set, min(batch_size, len(val_set)), shuffle=False, drop_last=False, stream="val")
    model = context.to_device(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(train_loader))
    start_epoch, history = 0, []
    context.expect_epochs(epochs)
    with context.lifecycle():
        state = context.load_checkpoint()
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            start_epoch, history = int(state["epoch"]) + 1, list(state["history"])
        step = start_epoch * len(train_loader)
        for epoch in range(start_epoch, epochs):
            model.train()
            t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
            for images, labels in context.progress(train_loader, desc=f"train {epoch + 1}/{epochs}"):
                images, labels = context.to_device(images), context.to_device(labels)
                with context.autocast():
                    logits, aux = _logits(model(images))
                    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
                    if aux is not None:
                        loss = loss + aux_weight * F.cross_entropy(aux.float(), labels, label_smoothing=label_smoothing)
                context.check_finite(loss, "training loss", epoch=epoch, step=step)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                for p in model.parameters():
                    if p.grad is not None:
                        context.all_reduce_mean(p.grad)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                opt.step()
                sched.step()
                loss_value = float(loss.detach())
                loss_sum += loss_value * labels.numel()
                correct += int((logits.argmax(-1) == labels).sum())
                seen += int(labels.numel())
                context.log_step(step, {"loss": loss_value, "lr": sched.get_last_lr()[0]})
                step += 1
            val_acc, val_loss = evaluate(model, val_loader, context)
            rec = {
                "epoch": epoch,
                "train_loss": loss_sum / max(1, seen),
                "train_acc": 100.0 * correct / max(1, seen),
                "val_acc": val_acc,
                "val_loss": val_loss,
                "images_per_s": seen / max(1e-9, time.perf_counter() - t0),
            }
            history.append(rec)
            context.log_epoch(epoch, rec)
            context.save_checkpoint({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                                     "epoch": epoch, "history": history})
        final = history[-1]
        out = {"val_acc": final["val_acc"], "val_loss": final["val_loss"], "history": history,
               "best_val_acc": max(h["val_acc"] for h in history)}
        if not math.isfinite(out["val_loss"]):
            raise DataError("validation loss is not finite")
        return context.finish(out)
