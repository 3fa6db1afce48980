"""Helpers shared by the spaces: option checks, one-hot decoding, parameter and MAC counting."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from nas_core import ConfigError

__all__ = [
    "check_int",
    "check_choice",
    "one_hot_rows",
    "count_params",
    "count_macs",
    "pick",
]


def check_int(space: str, option: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, else a :class:`ConfigError` naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ConfigError(f"space '{space}': option '{option}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(space: str, option: str, value: Any, valid: Sequence[Any]) -> Any:
    if value not in valid:
        raise ConfigError(
            f"space '{space}': option '{option}' must be one of {', '.join(map(repr, valid))}, got {value!r}"
        )
    return value


def one_hot_rows(ops: np.ndarray, width: int) -> list[int] | None:
    """Column index of each row of a one-hot matrix, or ``None`` if a row is not one-hot (0/1, exactly one 1)."""
    o = np.asarray(ops, dtype=np.float64)
    if o.ndim != 2 or o.shape[1] != width:
        return None
    hot = o > 0.5
    if not np.all((o < 0.5) | hot) or np.any(hot.sum(-1) != 1):
        return None
    return [int(i) for i in hot.argmax(-1)]


def memory_format(x: torch.Tensor, channels_last: bool | None) -> torch.Tensor:
    """``x`` in channels-last layout when asked; ``None``: on the CPU outside autocast (fp32), where the convnet
    supernets run faster in that layout (not under CPU autocast: torch 2.14's oneDNN returns NaN weight gradients
    for channels-last bf16 dilated depthwise convs given small output gradients); elsewhere as given."""
    cl = channels_last
    if cl is None:
        cl = x.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
    return x.contiguous(memory_format=torch.channels_last) if cl and x.dim() == 4 else x


def pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    """A uniformly random element of ``seq`` (numpy Generator, reproducible)."""
    return seq[int(rng.integers(len(seq)))]


def count_params(module: nn.Module, exclude: str | None = None) -> int:
    """Trainable parameters, skipping those whose name contains ``exclude``."""
    return sum(p.numel() for n, p in module.named_parameters() if exclude is None or exclude not in n)


@torch.no_grad()
def count_macs(module: nn.Module, x: torch.Tensor, forward: Any = None) -> int:
    """Multiply-accumulates of the weights of every ``Conv2d`` and ``Linear`` in one forward pass of the
    first image of ``x`` (biases, normalisation, activations, pooling and additions are not counted).

    This is the measured counterpart of the spaces' analytic ``cost().flops`` (tests compare the two).
    """
    total = [0]

    def conv_hook(m: nn.Conv2d, inp: Any, out: torch.Tensor) -> None:
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        total[0] += int(out[0].numel()) * k

    def lin_hook(m: nn.Linear, inp: Any, out: torch.Tensor) -> None:
        total[0] += int(out[0].numel()) * m.in_features

    handles = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(lin_hook))
    was = module.training
    module.eval()
    try:
        (forward or module)(x[:1])
    finally:
        module.train(was)
        for h in handles:
            h.remove()
    return total[0]
