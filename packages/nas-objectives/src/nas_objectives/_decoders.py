"""Decoders built from ``feature_info`` alone, so they fit any backbone honouring the supernet contract:
CNN pyramids (reductions growing) and ViT-like ones (every stage at the patch size).

``hierarchical``
    MAE-NAS eq. 3: ``F_d = Linear(sum_i Upsample(Conv_i(F_i)))`` - a conv aligns each stage's
    channels, every stage is upsampled to the output size, the maps are summed and a 1x1 linear layer
    predicts the output channels. With ``act`` set, the activation sits before the final linear layer.
``simple``
    SimMIM: a 1x1 conv on the last stage to ``out * r^2`` channels and a pixel shuffle by ``r``.
``transformer``
    MAE-style light decoder: the last stage as tokens, a linear embedding, learned position
    embeddings, ``depth`` (2) pre-norm transformer blocks and a linear prediction of each token's
    ``r x r`` patch.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import ConfigError, FeatureInfo

__all__ = ["HierarchicalDecoder", "SimpleDecoder", "TransformerDecoder", "build_decoder", "DECODERS", "resize_to"]

DECODERS = ("hierarchical", "simple", "transformer")


def resize_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear upsampling to ``size``; area averaging when shrinking."""
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def default_decoder_dim(feature_info: FeatureInfo) -> int:
    """Decoder width from the pyramid: the narrowest stage, kept within 8..64 (cheap at full resolution)."""
    return max(8, min(64, min(feature_info.channels())))


class HierarchicalDecoder(nn.Module):
    """MAE-NAS's multi-scale decoder (eq. 3).

    :param feature_info: the backbone's stages.
    :param out_chans: channels of the prediction (3 for pixels, the number of colour bins for colorization).
    :param dim: width of the channel-aligning convs (default: narrowest stage, within 8..64).
    :param act: optional activation before the final linear layer (``None`` = exactly eq. 3, linear).
    :param kernel_size: kernel of the aligning convs (1 by default).

    When the decoder is linear (no ``act``, 1x1 aligning convs) it is evaluated in the equivalent
    order ``sum_i Upsample((Linear o Conv_i)(F_i))``: upsampling and 1x1 convs commute, so the result
    and the gradients are those of eq. 3 while only ``out_chans`` maps are upsampled.
    """

    def __init__(
        self,
        feature_info: FeatureInfo,
        out_chans: int,
        *,
        dim: int | None = None,
        act: type[nn.Module] | None = None,
        kernel_size: int = 1,
    ):
        super().__init__()
        fi = FeatureInfo.coerce(feature_info)
        self.dim = int(dim or default_decoder_dim(fi))
        self.out_chans = int(out_chans)
        pad = kernel_size // 2
        self.align = nn.ModuleList(nn.Conv2d(c, self.dim, kernel_size, padding=pad) for c in fi.channels())
        self.act = act() if act is not None else nn.Identity()
        self.linear = nn.Conv2d(self.dim, self.out_chans, 1)
        self.fused = act is None and kernel_size == 1

    def forward(self, feats: Sequence[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        if len(feats) != len(self.align):
            raise ConfigError(
                f"hierarchical decoder was built for {len(self.align)} stages but got {len(feats)} feature maps"
            )
        size = (int(size[0]), int(size[1]))
        groups: dict[tuple[int, int], torch.Tensor] = {}
        if self.fused:
            w_lin = self.linear.weight.flatten(1)  # [out, dim]
            bias = self.linear.bias
            for f, conv in zip(feats, self.align):
                w = (w_lin @ conv.weight.flatten(1)).view(self.out_chans, -1, 1, 1)
                bias = bias + w_lin @ conv.bias
                y = F.conv2d(f, w.to(f.dtype))
                key = (y.shape[-2], y.shape[-1])
                groups[key] = groups[key] + y if key in groups else y
            out = None
            for y in groups.values():  # stages at the same scale are summed before resizing (linear)
                y = resize_to(y, size)
                out = y if out is None else out + y
            assert out is not None
            return out + bias.to(out.dtype).view(1, -1, 1, 1)
        for f, conv in zip(feats, self.align):
            y = conv(f)
            key = (y.shape[-2], y.shape[-1])
            groups[key] = groups[key] + y if key in groups else y
        out = None
        for y in groups.values():
            y = resize_to(y, size)
            out = y if out is None else out + y
        assert out is not None
        return self.linear(self.act(out))


class SimpleDecoder(nn.Module):
    """SimMIM's decoder: a 1x1 conv on the last stage to ``out * r^2`` channels, then pixel shuffle by ``r``.

    ``r`` is the last stage's reduction divided by ``out_reduction`` (the output's own reduction).
    """

    def __init__(self, feature_info: FeatureInfo, out_chans: int, *, out_reduction: int = 1):
        super().__init__()
        fi = FeatureInfo.coerce(feature_info)
        red = fi.reduction()[-1]
        if red % out_reduction:
            raise ConfigError(f"simple decoder: last-stage reduction {red} is not a multiple of the output's {out_reduction}")
        self.scale = red // out_reduction
        self.out_chans = int(out_chans)
        self.proj = nn.Conv2d(fi.channels()[-1], self.out_chans * self.scale**2, 1)

    def forward(self, feats: Sequence[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        y = self.proj(feats[-1])
        if self.scale > 1:
            y = F.pixel_shuffle(y, self.scale)
        return resize_to(y, size)


class TransformerDecoder(nn.Module):
    """MAE-style light decoder on the last stage (ViT-like pyramids; works on any pyramid).

    Tokens ``[B, N, C]`` from the last stage's ``H/r x W/r`` grid -> Linear(C, dim) + learned position
    embeddings -> ``depth`` pre-norm transformer blocks -> LayerNorm -> Linear(dim, out * s^2) -> each
    token's ``s x s`` patch (``s = r / out_reduction``).
    """

    def __init__(
        self,
        feature_info: FeatureInfo,
        out_chans: int,
        *,
        img_size: int,
        out_reduction: int = 1,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        fi = FeatureInfo.coerce(feature_info)
        red = fi.reduction()[-1]
        if red % out_reduction:
            raise ConfigError(f"transformer decoder: last-stage reduction {red} is not a multiple of the output's {out_reduction}")
        if dim % heads:
            raise ConfigError(f"transformer decoder: dim {dim} must be divisible by heads {heads}")
        self.scale = red // out_reduction
        self.out_chans = int(out_chans)
        self.grid = max(1, img_size // red)
        self.embed = nn.Linear(fi.channels()[-1], dim)
        self.pos = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim, heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, self.out_chans * self.scale**2)

    def _pos(self, gh: int, gw: int) -> torch.Tensor:
        if gh == gw == self.grid:
            return self.pos
        p = self.pos.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        p = F.interpolate(p, size=(gh, gw), mode="bicubic", align_corners=False)
        return p.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)

    def forward(self, feats: Sequence[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        f = feats[-1]
        b, _, gh, gw = f.shape
        t = self.embed(f.flatten(2).transpose(1, 2)) + self._pos(gh, gw).to(f.dtype)
        for blk in self.blocks:
            t = blk(t)
        y = self.head(self.norm(t))  # [B, N, out*s*s]
        y = y.transpose(1, 2).reshape(b, -1, gh, gw)
        if self.scale > 1:
            y = F.pixel_shuffle(y, self.scale)
        return resize_to(y, size)


def build_decoder(
    kind: str,
    feature_info: FeatureInfo,
    out_chans: int,
    *,
    img_size: int,
    dim: int | None = None,
    depth: int = 2,
    heads: int = 4,
    act: type[nn.Module] | None = None,
    out_reduction: int = 1,
) -> nn.Module:
    """A decoder by name (``hierarchical``, ``simple``, ``transformer``)."""
    if kind == "hierarchical":
        return HierarchicalDecoder(feature_info, out_chans, dim=dim, act=act)
    if kind == "simple":
        return SimpleDecoder(feature_info, out_chans, out_reduction=out_reduction)
    if kind == "transformer":
        d = int(dim or 128)
        h = heads if d % heads == 0 else math.gcd(d, heads) or 1
        return TransformerDecoder(
            feature_info, out_chans, img_size=img_size, out_reduction=out_reduction, dim=d, depth=depth, heads=h
        )
    raise ConfigError(f"decoder: unknown decoder '{kind}' (valid: {', '.join(DECODERS)})")
