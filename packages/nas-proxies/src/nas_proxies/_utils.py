"""Small helpers shared by the proxies: layer selection, outputs, naming, finiteness, pseudo-classes."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from nas_core import ConfigError, NonFiniteError, pseudo_targets

__all__ = [
    "PROXY_NAMES",
    "prunable_layers",
    "arch_label",
    "net_output",
    "net_logits",
    "check_finite",
    "pseudo_targets",
    "seeded",
]

#: The thirteen zero-cost proxies of UP-NAS (NAS-Bench-Suite-Zero names), in the paper's order.
PROXY_NAMES: tuple[str, ...] = (
    "grad_norm",
    "snip",
    "grasp",
    "fisher",
    "jacov",
    "synflow",
    "nwot",
    "zen",
    "epe_nas",
    "flops",
    "params",
    "l2_norm",
    "plain",
)

_PRUNABLE = (nn.modules.conv._ConvNd, nn.Linear)


def prunable_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers whose weights the parameter-level proxies sum over: convolutions and linear layers
    (the ``get_layer_metric_array`` convention of zero-cost-nas and NASLib)."""
    return [(n, m) for n, m in net.named_modules() if isinstance(m, _PRUNABLE) and getattr(m, "weight", None) is not None]


def arch_label(net: nn.Module, arch: Any = None) -> str:
    """How an error names the network: ``arch`` when given, else ``net.arch``/``net.genotype``, else its class."""
    if arch is not None:
        return str(arch)
    for attr in ("arch", "genotype", "arch_str"):
        value = getattr(net, attr, None)
        if value is not None and not callable(value) and not isinstance(value, (nn.Module, torch.Tensor)):
            return str(value)
    return f"<{type(net).__name__} without an arch attribute>"


def net_output(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` as one tensor: the logits, or the last feature map of a feature-list network."""
    out = net(x)
    if isinstance(out, (list, tuple)):
        if not out:
            raise ConfigError(f"{type(net).__name__} returned an empty feature list")
        out = out[-1]
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"{type(net).__name__} returned {type(out).__name__}; expected a tensor or a list of tensors")
    return out


def net_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` when it returns ``[B, classes]`` logits; a clear error for feature-list networks."""
    out = net(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        raise ConfigError(
            f"the supervised form (targets given) needs a network with a classifier returning [batch, classes] "
            f"logits, but {type(net).__name__} returned {shape}. Build it with space.build(arch, num_classes=...), "
            f"or go label-free: pass loss_fn=nas_proxies.objective_loss(objective, net) and no targets"
        )
    return out


def check_finite(proxy: str, value: float, arch: str, hint: str = "") -> float:
    """Return ``value`` as a float, or raise :class:`nas_core.NonFiniteError` naming the proxy and architecture."""
    v = float(value)
    if not math.isfinite(v):
        extra = f" ({hint})" if hint else ""
        raise NonFiniteError(f"proxy '{proxy}' is {v} for architecture {arch}{extra}")
    return v


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's RNG seeded to ``seed`` and restore the caller's RNG state afterwards."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
