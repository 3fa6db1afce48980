"""Run code on a network and leave it exactly as it was (weights, buffers, grads, flags, modes)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn as nn

__all__ = ["preserved_state"]


@contextlib.contextmanager
def preserved_state(net: nn.Module) -> Iterator[nn.Module]:
    """Inside the block the network may be trained, mutated or have its BN statistics updated;
    on exit its state dict, ``requires_grad`` flags, ``.grad`` tensors and train/eval modes are restored."""
    state = {k: v.detach().clone() for k, v in net.state_dict(keep_vars=True).items()}
    flags = {n: p.requires_grad for n, p in net.named_parameters()}
    grads = {n: None if p.grad is None else p.grad.detach().clone() for n, p in net.named_parameters()}
    modes = {n: m.training for n, m in net.named_modules()}
    try:
        yield net
    finally:
        with torch.no_grad():
            current = net.state_dict(keep_vars=True)
            for k, v in state.items():
                t = current[k]
                if t.dtype != v.dtype:
                    t.data = t.data.to(v.dtype)
                t.copy_(v)
        params = dict(net.named_parameters())
        for n, p in params.items():
            p.requires_grad_(flags.get(n, p.requires_grad))
            p.grad = grads.get(n)
        for n, m in net.named_modules():
            if n in modes:
                m.training = modes[n]
