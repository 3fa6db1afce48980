"""Operations of the DARTS cell space (Liu et al., ICLR 2019) and its relatives.

Every conv op is ReLU -> conv(s) -> BN. ``relu_in=False`` builds the op without its leading ReLU
(the supernet applies one shared ReLU per cell state); parameter names are the same either way, so
weights move between supernet and standalone networks by name.

Ops that end in a batch norm take ``forward(x, scale)``: ``scale * op(x)`` computed by folding the
(scalar) ``scale`` into that batch norm's affine step. The supernet passes its softmaxed op weight
there, which spares one multiplication per op and the activation autograd would keep for it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "OP_NAMES",
    "PARAMETRIC_OPS",
    "make_op",
    "ReLUConvBN",
    "SepConv",
    "DilConv",
    "Conv7x1_1x7",
    "FactorizedReduce",
    "Zero",
    "Noise",
    "Pool",
    "drop_path",
    "channel_shuffle",
    "scaled_bn",
]

#: Every op the networks can build (S0's 8, R-DARTS' ``noise``, and the 7x7 ops of NASNet/AmoebaNet).
OP_NAMES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "noise",
    "sep_conv_7x7",
    "conv_7x1_1x7",
)
#: Ops that start with a ReLU (they can share the supernet's per-state ReLU).
PARAMETRIC_OPS = frozenset({"sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7"})


def scaled_bn(bn: nn.BatchNorm2d, y: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """``scale * bn(y)`` with ``scale`` (a 0-dim tensor) folded into the affine step: the same values, running
    statistics and gradients as the product, in one kernel. ``num_batches_tracked`` is not counted on this path
    (it only matters for ``momentum=None``, which these ops never use)."""
    if scale is None:
        return bn(y)
    weight = scale.expand(y.shape[1]) if bn.weight is None else bn.weight * scale
    bias = None if bn.bias is None else bn.bias * scale
    use_batch = bn.training or bn.running_mean is None
    momentum = 0.1 if bn.momentum is None else bn.momentum
    return F.batch_norm(y, bn.running_mean, bn.running_var, weight, bias, use_batch, momentum, bn.eps)


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked (ReLU, depthwise kxk, pointwise 1x1, BN); the first depthwise conv has the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True, relu_in: bool = True):
        super().__init__()
        self.relu_in = relu_in
        self.dw1 = nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, groups=c_in, bias=False)
        self.pw1 = nn.Conv2d(c_in, c_in, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in, affine=affine)
        self.dw2 = nn.Conv2d(c_in, c_in, kernel, stride=1, padding=padding, groups=c_in, bias=False)
        self.pw2 = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        if self.relu_in:
            x = F.relu(x)
        x = F.relu(self.bn1(self.pw1(self.dw1(x))))
        return scaled_bn(self.bn2, self.pw2(self.dw2(x)), scale)


class DilConv(nn.Module):
    """ReLU, dilated depthwise kxk, pointwise 1x1, BN."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool = True, relu_in: bool = True
    ):
        super().__init__()
        self.relu_in = relu_in
        self.dw = nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False)
        self.pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        if self.relu_in:
            x = F.relu(x)
        return scaled_bn(self.bn, self.pw(self.dw(x)), scale)


class Conv7x1_1x7(nn.Module):
    """ReLU, 1x7 conv, 7x1 conv, BN (AmoebaNet)."""

    def __init__(self, c: int, stride: int, affine: bool = True, relu_in: bool = True):
        super().__init__()
        self.relu_in = relu_in
        self.conv1 = nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False)
        self.conv2 = nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False)
        self.bn = nn.BatchNorm2d(c, affine=affine)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        if self.relu_in:
            x = F.relu(x)
        return scaled_bn(self.bn, self.conv2(self.conv1(x)), scale)


class FactorizedReduce(nn.Module):
    """ReLU, two stride-2 1x1 convs on offset grids, concatenated, BN (halves the resolution).

    On the CPU with fewer than 8 input channels the stride is taken by slicing before stride-1 convs (the same
    values): oneDNN's backward of a strided 1x1 convolution on channels-last input with 2-7 channels writes past
    its buffer on AVX2 CPUs (heap corruption, torch 2.14.1), and partial-channel supernets (C=16, K=4) and small
    widths make exactly those inputs. Wider inputs keep the strided kernel, 10-18% faster than slicing.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True, relu_in: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu_in = relu_in
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        if self.relu_in:
            x = F.relu(x)
        # odd sizes: pad the shifted grid so both halves have the same size
        shifted = x[:, :, 1:, 1:]
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            shifted = F.pad(shifted, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        if x.device.type == "cpu" and x.shape[1] < 8:
            a = F.conv2d(x[:, :, ::2, ::2], self.conv_1.weight)
            b = F.conv2d(shifted[:, :, ::2, ::2], self.conv_2.weight)
        else:
            a, b = self.conv_1(x), self.conv_2(shifted)
        return scaled_bn(self.bn, torch.cat([a, b], dim=1), scale)


class Zero(nn.Module):
    """``none``: zeros (strided when the edge reduces)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Noise(nn.Module):
    """R-DARTS' ``noise`` op: standard normal noise of the (strided) input's shape, ignoring its values.

    In eval mode the noise is a fixed pattern (seeded), so evaluation and scores are repeatable.
    """

    def __init__(self, stride: int, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.stride, self.mean, self.std = stride, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.training:
            return torch.empty_like(x).normal_(self.mean, self.std)
        g = torch.Generator(device=x.device).manual_seed(0)
        return torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype) * self.std + self.mean


class Pool(nn.Module):
    """3x3 max or average pooling (padding excluded from averages), optionally followed by an
    affine-free BN as in the DARTS search network."""

    def __init__(self, kind: str, c: int, stride: int, bn: bool = False):
        super().__init__()
        self.pool = (
            nn.MaxPool2d(3, stride=stride, padding=1)
            if kind == "max"
            else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        )
        self.bn = nn.BatchNorm2d(c, affine=False) if bn else None

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pool(x)
        if self.bn is None:
            return x if scale is None else scale * x
        return scaled_bn(self.bn, x, scale)


def make_op(name: str, c: int, stride: int, affine: bool = True, relu_in: bool = True, pool_bn: bool = False) -> nn.Module:
    """Build op ``name`` on ``c`` channels (``stride`` 2 on reducing edges)."""
    if name == "none":
        return Zero(stride)
    if name == "noise":
        return Noise(stride)
    if name == "max_pool_3x3":
        return Pool("max", c, stride, pool_bn)
    if name == "avg_pool_3x3":
        return Pool("avg", c, stride, pool_bn)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine, relu_in)
    if name == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1, affine, relu_in)
    if name == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2, affine, relu_in)
    if name == "sep_conv_7x7":
        return SepConv(c, c, 7, stride, 3, affine, relu_in)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2, affine, relu_in)
    if name == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, 2, affine, relu_in)
    if name == "conv_7x1_1x7":
        return Conv7x1_1x7(c, stride, affine, relu_in)
    raise ValueError(f"unknown DARTS op {name!r}; valid: {', '.join(OP_NAMES)}")


def starts_with_relu(name: str, stride: int) -> bool:
    """Whether op ``name`` begins with a ReLU (and so can take a pre-activated input)."""
    return name in PARAMETRIC_OPS or (name == "skip_connect" and stride != 1)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (DARTS' drop-path)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x.div(keep) * mask


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (PC-DARTS mixes the sampled and bypassed channels with it)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)
