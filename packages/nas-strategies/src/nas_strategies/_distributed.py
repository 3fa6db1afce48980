"""Sharded candidate evaluation and the explicit all-reduces of the strategies (through the run context;
no-ops in one process)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from nas_core import Architecture

__all__ = ["evaluate_sharded", "sync_grads", "reduce_tensors", "sync_buffers", "broadcast_module"]


def evaluate_sharded(
    fitness: Callable[[Architecture], dict[str, float]],
    archs: Sequence[Architecture],
    context: Any,
    *,
    desc: str = "evaluating",
) -> list[dict[str, float]]:
    """Evaluate ``archs`` with this rank's share (round-robin) and gather every rank's scores, in order.
    Each evaluation is reported to ``nas_candidate_evaluated`` (main rank)."""
    indexed = list(enumerate(archs))
    mine = context.shard(indexed)
    local: list[tuple[int, dict[str, float]]] = []
    for i, a in context.progress(mine, total=len(mine), desc=desc):
        local.append((i, fitness(a)))
    gathered = context.all_gather_object(local)
    out: list[dict[str, float] | None] = [None] * len(archs)
    for part in gathered:
        for i, s in part:
            out[i] = {k: float(v) for k, v in s.items()}
    missing = [i for i, s in enumerate(out) if s is None]
    if missing:  # pragma: no cover - would be a bug in sharding
        raise RuntimeError(f"candidates {missing[:5]} were evaluated by no rank")
    for a, s in zip(archs, out):
        if context.is_main:
            context.candidate_evaluated(a, s)
    return out  # type: ignore[return-value]


def all_gather_sharded(fn: Callable[[Any], Any], items: Sequence[Any], context: Any) -> list[Any]:
    """``[fn(x) for x in items]`` with each rank computing its round-robin share; every rank gets all results."""
    mine = context.shard(list(enumerate(items)))
    out: list[Any] = [None] * len(items)
    for part in context.all_gather_object([(i, fn(x)) for i, x in mine]):
        for i, v in part:
            out[i] = v
    return out


def sync_grads(params: Sequence[torch.Tensor], context: Any) -> None:
    """Average ``.grad`` over ranks in one flat all-reduce (missing grads count as zeros)."""
    if not context.distributed or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    context.all_reduce_mean(flat)
    off = 0
    for p in params:
        n = p.numel()
        p.grad = flat[off : off + n].view_as(p).clone()
        off += n


def reduce_tensors(tensors: Sequence[torch.Tensor], context: Any) -> list[torch.Tensor]:
    """Mean over ranks of a list of tensors (one flat all-reduce)."""
    if not context.distributed or not tensors:
        return list(tensors)
    flat = torch.cat([t.reshape(-1) for t in tensors])
    context.all_reduce_mean(flat)
    out, off = [], 0
    for t in tensors:
        out.append(flat[off : off + t.numel()].view_as(t).clone())
        off += t.numel()
    return out


def sync_buffers(module: nn.Module, context: Any) -> None:
    """Average floating-point buffers (BN running statistics) over ranks so every rank holds the same state."""
    if not context.distributed:
        return
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if bufs:
        for b, r in zip(bufs, reduce_tensors([b.detach() for b in bufs], context)):
            b.data.copy_(r)


def broadcast_module(module: nn.Module, context: Any) -> None:
    """Give every rank rank 0's parameters and buffers (identical start)."""
    if not context.distributed:
        return
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    state = context.broadcast_object(state)
    module.load_state_dict(state)
