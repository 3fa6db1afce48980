"""An AutoFormer-style ViT space (Chen et al., ICCV 2021), as MaskTAS searches it.

One supernet holds the largest dims; a subnet (embed dim, depth, per-layer heads and MLP ratio)
uses the leading slices of every shared weight (weight entanglement): the first ``e`` embedding
channels, the first ``h * head_dim`` rows of each of q, k and v, the first ``int(e * r)`` MLP hidden
units, the first ``d`` blocks. Heads have a fixed width (``head_dim``, 64 as in AutoFormer), so the
q-k-v width is ``heads * head_dim`` whatever the embed dim.

A subnet extracted from the supernet (or built from scratch) is a timm ``VisionTransformer``
made of timm ``Block``\\ s, so it fine-tunes like any timm ViT.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import Architecture, ArchitectureError, ConfigError, Cost, FeatureInfo, SearchSpace, Supernet
from timm.layers.attention import Attention
from timm.models.vision_transformer import Block, VisionTransformer

from ._common import check_int, one_hot_rows, pick

__all__ = ["VitArch", "VitSpace", "VitSupernet", "VitNetwork", "AUTOFORMER_PRESETS"]

#: The AutoFormer search spaces (paper, Table 1): embed dims, depths, heads per layer, MLP ratios.
#: (The released supernet-B config lists heads (9, 10); the paper's Q-K-V range 512-640 means 8-10.)
AUTOFORMER_PRESETS: dict[str, dict[str, tuple[Any, ...]]] = {
    "tiny": {"embed_dims": (192, 216, 240), "depths": (12, 13, 14), "num_heads": (3, 4), "mlp_ratios": (3.5, 4.0)},
    "small": {"embed_dims": (320, 384, 448), "depths": (12, 13, 14), "num_heads": (5, 6, 7), "mlp_ratios": (3.0, 3.5, 4.0)},
    "base": {"embed_dims": (528, 576, 624), "depths": (14, 15, 16), "num_heads": (8, 9, 10), "mlp_ratios": (3.0, 3.5, 4.0)},
}
_FIELDS = ("embed_dim", "depth", "mlp_ratio", "num_heads")


def _fmt_ratio(r: float) -> str:
    return repr(float(r))


@dataclass(frozen=True)
class VitArch(Architecture):
    """A ViT subnet: embed dim, depth and, per layer, the number of heads and the MLP ratio.

    ``str()`` is a compact JSON dict: ``{"embed_dim": 192, "depth": 12, "mlp_ratio": [4.0, ...], "num_heads": [3, ...]}``.
    """

    embed_dim: int
    depth: int
    mlp_ratio: tuple[float, ...]
    num_heads: tuple[int, ...]
    space: ClassVar[str] = "vit"

    def __post_init__(self) -> None:
        for name in ("embed_dim", "depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
                raise ArchitectureError(f"ViT architecture: '{name}' must be a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        for name, cast in (("mlp_ratio", float), ("num_heads", int)):
            vals = getattr(self, name)
            if not isinstance(vals, (list, tuple)):
                raise ArchitectureError(f"ViT architecture: '{name}' must be a list with one value per layer, got {vals!r}")
            if len(vals) != self.depth:
                raise ArchitectureError(
                    f"ViT architecture: '{name}' has {len(vals)} entries but depth is {self.depth} (one per layer)"
                )
            out = []
            for i, v in enumerate(vals):
                ok = isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and v > 0
                if ok and cast is int and float(v) != int(v):
                    ok = False
                if not ok:
                    raise ArchitectureError(f"ViT architecture: layer {i}: {name} {v!r} must be a positive {cast.__name__}")
                out.append(cast(v))
            object.__setattr__(self, name, tuple(out))

    def __str__(self) -> str:
        return (
            f'{{"embed_dim": {self.embed_dim}, "depth": {self.depth}, '
            f'"mlp_ratio": [{", ".join(_fmt_ratio(r) for r in self.mlp_ratio)}], '
            f'"num_heads": [{", ".join(str(h) for h in self.num_heads)}]}}'
        )

    @classmethod
    def parse(cls, text: Any) -> VitArch:
        if isinstance(text, VitArch):
            return text
        if isinstance(text, dict):
            data = text
        elif isinstance(text, str):
            s = text.strip()
            if not s:
                raise ArchitectureError(
                    'ViT architecture string is empty; expected {"embed_dim": 192, "depth": 12, "mlp_ratio": [...], "num_heads": [...]}'
                )
            try:
                data = json.loads(s)
            except json.JSONDecodeError as exc:
                raise ArchitectureError(
                    f"ViT architecture {s[:60]!r} is not a JSON dict: {exc.msg} at character {exc.pos}"
                ) from None
        else:
            raise ArchitectureError(f"a ViT architecture is a dict string, got {type(text).__name__}")
        if not isinstance(data, dict):
            raise ArchitectureError(f"ViT architecture must be a dict with keys {', '.join(_FIELDS)}, got {type(data).__name__}")
        unknown = [k for k in data if k not in _FIELDS]
        if unknown:
            raise ArchitectureError(f"ViT architecture: unknown key {unknown[0]!r}; the keys are {', '.join(_FIELDS)}")
        missing = [k for k in _FIELDS if k not in data]
        if missing:
            raise ArchitectureError(f"ViT architecture: missing key(s) {', '.join(missing)}")
        return cls(data["embed_dim"], data["depth"], data["mlp_ratio"], data["num_heads"])

    __hash__ = Architecture.__hash__

    def hidden(self, i: int) -> int:
        """MLP hidden width of layer ``i``."""
        return int(self.embed_dim * self.mlp_ratio[i])


def stage_blocks(depth: int, stages: int) -> list[int]:
    """Indices of the blocks whose outputs are the feature stages (evenly spread, the last block last)."""
    return [math.ceil(depth * (k + 1) / stages) - 1 for k in range(stages)]


def _tokens_to_map(x: torch.Tensor, grid: tuple[int, int], prefix: int) -> torch.Tensor:
    b, _, c = x.shape
    return x[:, prefix:].transpose(1, 2).reshape(b, c, grid[0], grid[1])


# ----------------------------------------------------------------------------------------------
# standalone network: a timm VisionTransformer
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _attention_class(head_dim: int) -> type:
    """timm attention with heads of a fixed width (AutoFormer's q-k-v dim = heads * head_dim)."""

    class FixedHeadAttention(Attention):  # type: ignore[misc, valid-type]
        def __init__(self, dim: int, num_heads: int = 8, **kwargs: Any):
            super().__init__(dim, num_heads=num_heads, attn_head_dim=head_dim, **kwargs)

    FixedHeadAttention.__name__ = FixedHeadAttention.__qualname__ = f"Attention{head_dim}"
    return FixedHeadAttention


def _check_timm() -> None:
    import inspect

    if "attn_head_dim" not in inspect.signature(Attention.__init__).parameters:  # pragma: no cover - old timm
        raise ConfigError("the ViT space needs timm's Attention(attn_head_dim=...) (timm >= 1.0.20): pip install -U timm")


class VitNetwork(VisionTransformer):
    """A timm ``VisionTransformer`` of one subnet (timm ``Block``\\ s with per-layer heads and MLP ratios).

    ``forward`` returns logits when built with ``num_classes``, else the multi-scale features;
    ``forward_features`` returns the feature list (patch tokens of the stage blocks as NCHW maps,
    the last one after the final norm); ``forward_tokens`` is timm's token-level
    ``forward_features``. With a mask token, ``forward_features(x, mask=bool[B, H/p, W/p])`` replaces
    masked patch embeddings with it (SimMIM).
    """

    def __init__(
        self,
        arch: VitArch,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int | None = 1000,
        head_dim: int = 64,
        qkv_bias: bool = True,
        feature_stages: int = 4,
        drop_path_rate: float = 0.0,
        mask_token: bool = False,
    ):
        _check_timm()
        attn = _attention_class(head_dim)

        def block_fn(*, num_heads: int, mlp_ratio: float, attn_layer: Any, depth: int = 0, **kw: Any) -> nn.Module:
            return Block(num_heads=arch.num_heads[depth], mlp_ratio=arch.mlp_ratio[depth], attn_layer=attn, depth=depth, **kw)

        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            in_chans=in_chans,
            num_classes=num_classes or 0,
            embed_dim=arch.embed_dim,
            depth=arch.depth,
            num_heads=arch.num_heads[0],
            mlp_ratio=arch.mlp_ratio[0],
            qkv_bias=qkv_bias,
            drop_path_rate=drop_path_rate,
            block_fn=block_fn,
        )
        self.arch = arch
        self.head_dim = head_dim
        self.has_classifier = bool(num_classes)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, arch.embed_dim)) if mask_token else None
        if self.mask_token is not None:
            nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.stage_blocks = stage_blocks(arch.depth, feature_stages)
        self.grid = tuple(self.patch_embed.grid_size)
        self.feature_info = FeatureInfo(
            [{"num_chs": arch.embed_dim, "reduction": patch_size, "module": f"blocks.{i}"} for i in self.stage_blocks]
        )

    @property
    def supports_patch_mask(self) -> bool:
        return self.mask_token is not None

    def _embed(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.patch_embed(x)
        if mask is not None:
            if self.mask_token is None:
                raise ConfigError("this ViT has no mask token: build it with mask_token=True to use patch masks")
            m = mask.reshape(x.shape[0], -1, 1).to(x.dtype)
            x = x * (1 - m) + self.mask_token.to(x.dtype) * m
        return self.norm_pre(self.patch_drop(self._pos_embed(x)))

    def forward_tokens(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """timm's ``forward_features``: the normed tokens ``[B, 1 + N, C]``."""
        return self.norm(self.blocks(self._embed(x, mask)))

    def forward_features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:  # type: ignore[override]
        x = self._embed(x, mask)
        feats = []
        last = self.stage_blocks[-1]
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.stage_blocks:
                y = self.norm(x) if i == last else x
                feats.append(_tokens_to_map(y, self.grid, self.num_prefix_tokens))
        return feats

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Any:  # type: ignore[override]
        if not self.has_classifier:
            return self.forward_features(x, mask)
        return self.forward_head(self.forward_tokens(x, mask))


# ----------------------------------------------------------------------------------------------
# supernet
# ----------------------------------------------------------------------------------------------


class _SuperAttention(nn.Module):
    def __init__(self, dim: int, qkv_dim: int, qkv_bias: bool):
        super().__init__()
        self.qkv_dim = qkv_dim
        self.qkv = nn.Linear(dim, 3 * qkv_dim, bias=qkv_bias)
        self.proj = nn.Linear(qkv_dim, dim)


class _SuperMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)


class _SuperBlock(nn.Module):
    """A pre-norm transformer block whose every weight is used through its leading slices."""

    def __init__(self, dim: int, qkv_dim: int, hidden: int, qkv_bias: bool, head_dim: int, eps: float = 1e-6):
        super().__init__()
        self.head_dim, self.eps = head_dim, eps
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = _SuperAttention(dim, qkv_dim, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = _SuperMlp(dim, hidden)

    def sliced(self, e: int, h: int, hid: int) -> dict[str, torch.Tensor | None]:
        """The weights of the subnet block (embed ``e``, ``h`` heads, MLP hidden ``hid``), as timm names them."""
        hd = h * self.head_dim
        a, m = self.attn, self.mlp
        qkv_w = a.qkv.weight.view(3, a.qkv_dim, -1)[:, :hd, :e].reshape(3 * hd, e)
        qkv_b = None if a.qkv.bias is None else a.qkv.bias.view(3, a.qkv_dim)[:, :hd].reshape(3 * hd)
        return {
            "norm1.weight": self.norm1.weight[:e],
            "norm1.bias": self.norm1.bias[:e],
            "attn.qkv.weight": qkv_w,
            "attn.qkv.bias": qkv_b,
            "attn.proj.weight": a.proj.weight[:e, :hd],
            "attn.proj.bias": a.proj.bias[:e],
            "norm2.weight": self.norm2.weight[:e],
            "norm2.bias": self.norm2.bias[:e],
            "mlp.fc1.weight": m.fc1.weight[:hid, :e],
            "mlp.fc1.bias": m.fc1.bias[:hid],
            "mlp.fc2.weight": m.fc2.weight[:e, :hid],
            "mlp.fc2.bias": m.fc2.bias[:e],
        }

    def forward(self, x: torch.Tensor, e: int, h: int, hid: int, drop_prob: float = 0.0) -> torch.Tensor:
        w = self.sliced(e, h, hid)
        b, t, _ = x.shape
        y = F.layer_norm(x, (e,), w["norm1.weight"], w["norm1.bias"], self.eps)
        qkv = F.linear(y, w["attn.qkv.weight"], w["attn.qkv.bias"]).reshape(b, t, 3, h, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, h * self.head_dim)
        y = F.linear(y, w["attn.proj.weight"], w["attn.proj.bias"])
        x = x + _drop_path(y, drop_prob, self.training)
        y = F.layer_norm(x, (e,), w["norm2.weight"], w["norm2.bias"], self.eps)
        y = F.linear(F.gelu(F.linear(y, w["mlp.fc1.weight"], w["mlp.fc1.bias"])), w["mlp.fc2.weight"], w["mlp.fc2.bias"])
        return x + _drop_path(y, drop_prob, self.training)


def _drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if p <= 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(keep)
    return x * mask / keep


class VitSupernet(Supernet):
    """The weight-entangled ViT supernet (single path, patch masks).

    ``forward(x, arch=a, mask=m)`` runs subnet ``a`` (the active one, or the largest when none is
    set). Feature maps are the patch tokens of the stage blocks as NCHW maps; they always have the
    supernet's embed dim (``feature_info``), a smaller subnet's channels being zero-padded, so heads
    built from ``feature_info`` use the leading slices of their weights too.
    """

    capabilities = frozenset({"single_path", "patch_mask"})
    supports_patch_mask = True

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        head_dim: int = 64,
        qkv_bias: bool = True,
        feature_stages: int = 4,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        if img_size % patch_size:
            raise ConfigError(f"ViT supernet: img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.embed_dim, self.depth, self.num_heads, self.mlp_ratio = embed_dim, depth, num_heads, mlp_ratio
        self.img_size, self.patch_size, self.in_chans, self.head_dim = img_size, patch_size, in_chans, head_dim
        self.qkv_bias, self.feature_stages, self.drop_path_rate = qkv_bias, feature_stages, drop_path_rate
        self.grid = (img_size // patch_size, img_size // patch_size)
        n = self.grid[0] * self.grid[1]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        hidden = int(embed_dim * mlp_ratio)
        self.blocks = nn.ModuleList(_SuperBlock(embed_dim, num_heads * head_dim, hidden, qkv_bias, head_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.feature_info = FeatureInfo(
            [{"num_chs": embed_dim, "reduction": patch_size, "module": f"blocks.{i}"} for i in range(feature_stages)]
        )
        for p in (self.pos_embed, self.cls_token, self.mask_token):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self._active: VitArch | None = None

    @property
    def largest(self) -> VitArch:
        return VitArch(self.embed_dim, self.depth, (self.mlp_ratio,) * self.depth, (self.num_heads,) * self.depth)

    def _check(self, arch: Architecture | str) -> VitArch:
        a = VitArch.parse(arch if isinstance(arch, VitArch) else str(arch))
        problems = []
        if a.embed_dim > self.embed_dim:
            problems.append(f"embed_dim {a.embed_dim} > {self.embed_dim}")
        if a.depth > self.depth:
            problems.append(f"depth {a.depth} > {self.depth}")
        if a.depth < self.feature_stages:
            problems.append(f"depth {a.depth} < {self.feature_stages} feature stages")
        for i in range(a.depth):
            if a.num_heads[i] > self.num_heads:
                problems.append(f"layer {i}: num_heads {a.num_heads[i]} > {self.num_heads}")
            if a.hidden(i) > int(self.embed_dim * self.mlp_ratio):
                problems.append(f"layer {i}: mlp_ratio {a.mlp_ratio[i]} gives {a.hidden(i)} hidden units > {int(self.embed_dim * self.mlp_ratio)}")
        if problems:
            raise ArchitectureError(f"ViT subnet does not fit the supernet: {'; '.join(problems[:3])}")
        return a

    def set_active(self, arch: Architecture | str | None) -> None:
        self._active = None if arch is None else self._check(arch)

    def forward(self, x: torch.Tensor, *, arch: Architecture | str | None = None, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        a = self._check(arch) if arch is not None else (self._active or self.largest)
        e = a.embed_dim
        pe = self.patch_embed.proj
        t = F.conv2d(x, pe.weight[:e], pe.bias[:e], stride=self.patch_size).flatten(2).transpose(1, 2)
        if mask is not None:
            m = mask.reshape(t.shape[0], -1, 1).to(t.dtype)
            if m.shape[1] != t.shape[1]:
                raise ConfigError(f"patch mask has {m.shape[1]} patches per image; the input has {t.shape[1]} ({self.grid[0]}x{self.grid[1]})")
            t = t * (1 - m) + self.mask_token[..., :e].to(t.dtype) * m
        t = torch.cat([self.cls_token[..., :e].expand(t.shape[0], -1, -1).to(t.dtype), t], dim=1) + self.pos_embed[..., :e]
        stages = stage_blocks(a.depth, self.feature_stages)
        feats = []
        for i in range(a.depth):
            p = self.drop_path_rate * i / max(1, a.depth - 1)
            t = self.blocks[i](t, e, a.num_heads[i], a.hidden(i), p)
            if i in stages:
                y = F.layer_norm(t, (e,), self.norm.weight[:e], self.norm.bias[:e], self.norm.eps) if i == stages[-1] else t
                f = _tokens_to_map(y, self.grid, 1)
                if e < self.embed_dim:
                    f = F.pad(f, (0, 0, 0, 0, 0, self.embed_dim - e))
                feats.append(f)
        return feats

    @torch.no_grad()
    def extract(self, arch: Architecture | str, num_classes: int | None = None, mask_token: bool = True) -> nn.Module:
        """A standalone timm ``VisionTransformer`` of the subnet with the inherited (sliced) weights."""
        a = self._check(arch)
        e = a.embed_dim
        net = VitNetwork(
            a, self.img_size, self.patch_size, self.in_chans, num_classes, self.head_dim, self.qkv_bias,
            self.feature_stages, mask_token=mask_token,
        )
        net.patch_embed.proj.weight.copy_(self.patch_embed.proj.weight[:e])
        net.patch_embed.proj.bias.copy_(self.patch_embed.proj.bias[:e])
        net.cls_token.copy_(self.cls_token[..., :e])
        net.pos_embed.copy_(self.pos_embed[..., :e])
        if net.mask_token is not None:
            net.mask_token.copy_(self.mask_token[..., :e])
        for i in range(a.depth):
            state = self.blocks[i].sliced(e, a.num_heads[i], a.hidden(i))
            target = net.blocks[i].state_dict()
            for k, v in state.items():
                if v is not None:
                    target[k].copy_(v)
        net.norm.weight.copy_(self.norm.weight[:e])
        net.norm.bias.copy_(self.norm.bias[:e])
        return net


# ----------------------------------------------------------------------------------------------
# the space
# ----------------------------------------------------------------------------------------------


def _choices(option: str, values: Sequence[Any], cast: Any) -> tuple[Any, ...]:
    try:
        out = tuple(sorted({cast(v) for v in values}))
    except (TypeError, ValueError):
        raise ConfigError(f"space 'vit': option '{option}' must be a list of numbers, got {values!r}") from None
    if not out or any(v <= 0 for v in out):
        raise ConfigError(f"space 'vit': option '{option}' must be a non-empty list of positive numbers, got {values!r}")
    return out


class VitSpace(SearchSpace):
    """AutoFormer-style ViT space: embed dim, depth, and per layer heads and MLP ratio.

    :param preset: ``"tiny"``, ``"small"`` or ``"base"`` (AutoFormer's supernets); the choice lists
        below override it.
    :param embed_dims, depths, num_heads, mlp_ratios: the choices.
    :param img_size, patch_size, in_chans, num_classes: of the networks (224, 16, 3, 1000).
    :param head_dim: width of one attention head (64 in AutoFormer and ViT).
    :param feature_stages: how many blocks (spread evenly over the depth) give feature maps.
    :param mask_token: give built networks a SimMIM mask token (off: exactly timm's parameters).

    ``cost()``: parameters of the built network, and multiply-accumulates of one image through the
    patch embedding, every linear layer (q-k-v, projection, MLP, classifier) and the two attention
    matmuls (``2 * heads * head_dim * tokens^2`` per block); norms, softmax and GELU are not counted.
    """

    name = "vit"
    capabilities = frozenset({"single_path", "patch_mask"})

    def __init__(
        self,
        preset: str = "tiny",
        embed_dims: Sequence[int] | None = None,
        depths: Sequence[int] | None = None,
        num_heads: Sequence[int] | None = None,
        mlp_ratios: Sequence[float] | None = None,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        head_dim: int = 64,
        qkv_bias: bool = True,
        feature_stages: int = 4,
        drop_path_rate: float = 0.0,
        mask_token: bool = False,
    ):
        if preset not in AUTOFORMER_PRESETS:
            raise ConfigError(f"space 'vit': option 'preset' must be one of {', '.join(map(repr, AUTOFORMER_PRESETS))}, got {preset!r}")
        self.preset = preset
        p = AUTOFORMER_PRESETS[preset]
        self.embed_dims = _choices("embed_dims", embed_dims if embed_dims is not None else p["embed_dims"], int)
        self.depths = _choices("depths", depths if depths is not None else p["depths"], int)
        self.num_heads = _choices("num_heads", num_heads if num_heads is not None else p["num_heads"], int)
        self.mlp_ratios = _choices("mlp_ratios", mlp_ratios if mlp_ratios is not None else p["mlp_ratios"], float)
        self.img_size = check_int("vit", "img_size", img_size)
        self.patch_size = check_int("vit", "patch_size", patch_size)
        if self.img_size % self.patch_size:
            raise ConfigError(f"space 'vit': img_size {img_size} must be a multiple of patch_size {patch_size}")
        self.in_chans = check_int("vit", "in_chans", in_chans)
        self.num_classes = check_int("vit", "num_classes", num_classes)
        self.head_dim = check_int("vit", "head_dim", head_dim)
        self.qkv_bias = bool(qkv_bias)
        self.feature_stages = check_int("vit", "feature_stages", feature_stages)
        if self.feature_stages > min(self.depths):
            raise ConfigError(
                f"space 'vit': option 'feature_stages' ({feature_stages}) cannot exceed the smallest depth ({min(self.depths)})"
            )
        if not 0.0 <= float(drop_path_rate) < 1.0:
            raise ConfigError(f"space 'vit': option 'drop_path_rate' must be in [0, 1), got {drop_path_rate}")
        self.drop_path_rate = float(drop_path_rate)
        self.mask_token = bool(mask_token)
        self.max_depth = max(self.depths)
        self.labels = (
            *(f"embed_{e}" for e in self.embed_dims),
            *(f"heads_{h}" for h in self.num_heads),
            *(f"mlp_{r}" for r in self.mlp_ratios),
            "skip",
            "output",
        )

    @property
    def label(self) -> str:
        return self.registered_name or "vit"

    def config(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "embed_dims": list(self.embed_dims),
            "depths": list(self.depths),
            "num_heads": list(self.num_heads),
            "mlp_ratios": list(self.mlp_ratios),
            "img_size": self.img_size,
            "patch_size": self.patch_size,
            "in_chans": self.in_chans,
            "num_classes": self.num_classes,
            "head_dim": self.head_dim,
            "qkv_bias": self.qkv_bias,
            "feature_stages": self.feature_stages,
            "drop_path_rate": self.drop_path_rate,
            "mask_token": self.mask_token,
        }

    # -- values ---------------------------------------------------------------------------------
    def parse(self, text: Any) -> VitArch:
        """Parse the dict string and check every choice is one of this space's."""
        a = VitArch.parse(text)
        sp = self.label

        def bad(what: str, v: Any, valid: Sequence[Any]) -> ArchitectureError:
            return ArchitectureError(f"{sp}: {what} {v!r} is not a choice of this space; valid: {', '.join(map(str, valid))}")

        if a.embed_dim not in self.embed_dims:
            raise bad("embed_dim", a.embed_dim, self.embed_dims)
        if a.depth not in self.depths:
            raise bad("depth", a.depth, self.depths)
        for i in range(a.depth):
            if a.num_heads[i] not in self.num_heads:
                raise bad(f"layer {i}: num_heads", a.num_heads[i], self.num_heads)
            if a.mlp_ratio[i] not in self.mlp_ratios:
                raise bad(f"layer {i}: mlp_ratio", a.mlp_ratio[i], self.mlp_ratios)
        return a

    def validate(self, arch: Any) -> VitArch:
        return self.parse(arch if isinstance(arch, (str, dict, VitArch)) else str(arch))

    def _arch(self, arch: Any) -> VitArch:
        return self.parse(arch if isinstance(arch, (VitArch, dict)) else str(arch))

    def _layer(self, rng: np.random.Generator) -> tuple[float, int]:
        return pick(rng, self.mlp_ratios), pick(rng, self.num_heads)

    def sample(self, rng: np.random.Generator) -> VitArch:
        e, d = pick(rng, self.embed_dims), pick(rng, self.depths)
        layers = [self._layer(rng) for _ in range(d)]
        return VitArch(e, d, tuple(r for r, _ in layers), tuple(h for _, h in layers))

    def mutate(
        self, arch: Architecture, rng: np.random.Generator, *, depth_prob: float | None = None, block_prob: float | None = None
    ) -> VitArch:
        """One change by default (embed dim, depth, or one layer's heads or MLP ratio, to a different value).

        With ``depth_prob``/``block_prob`` it is AutoFormer's/MaskTAS' mutation instead: the depth
        changes with probability ``depth_prob`` (new layers random), then each layer's heads and MLP
        ratio and the embed dim are resampled with probability ``block_prob`` each.
        """
        a = self._arch(arch)
        e, ratios, heads = a.embed_dim, list(a.mlp_ratio), list(a.num_heads)
        if depth_prob is not None or block_prob is not None:
            pd, pm = float(depth_prob or 0.0), float(block_prob or 0.0)
            d = a.depth
            if rng.random() < pd:
                d = pick(rng, self.depths)
            while len(ratios) < d:
                r, h = self._layer(rng)
                ratios.append(r)
                heads.append(h)
            ratios, heads = ratios[:d], heads[:d]
            for i in range(d):
                if rng.random() < pm:
                    ratios[i] = pick(rng, self.mlp_ratios)
                if rng.random() < pm:
                    heads[i] = pick(rng, self.num_heads)
            if rng.random() < pm:
                e = pick(rng, self.embed_dims)
            return VitArch(e, d, tuple(ratios), tuple(heads))
        kinds = [k for k, n in (("embed", len(self.embed_dims)), ("depth", len(self.depths)),
                                ("heads", len(self.num_heads)), ("mlp", len(self.mlp_ratios))) if n > 1]
        if not kinds:
            return a
        kind = pick(rng, kinds)
        if kind == "embed":
            e = pick(rng, [v for v in self.embed_dims if v != e])
        elif kind == "depth":
            d = pick(rng, [v for v in self.depths if v != a.depth])
            while len(ratios) < d:
                r, h = self._layer(rng)
                ratios.append(r)
                heads.append(h)
            ratios, heads = ratios[:d], heads[:d]
        elif kind == "heads":
            i = int(rng.integers(a.depth))
            heads[i] = pick(rng, [v for v in self.num_heads if v != heads[i]])
        else:
            i = int(rng.integers(a.depth))
            ratios[i] = pick(rng, [v for v in self.mlp_ratios if v != ratios[i]])
        return VitArch(e, len(ratios), tuple(ratios), tuple(heads))

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> VitArch:
        """Each gene (embed dim, depth, each layer's heads and ratio) from either parent; a layer only
        one parent has comes from that parent."""
        pa, pb = self._arch(a), self._arch(b)
        e = pa.embed_dim if rng.random() < 0.5 else pb.embed_dim
        d = pa.depth if rng.random() < 0.5 else pb.depth
        ratios, heads = [], []
        for i in range(d):
            src = [p for p in (pa, pb) if i < p.depth]
            ratios.append((src[0] if len(src) == 1 or rng.random() < 0.5 else src[1]).mlp_ratio[i])
            heads.append((src[0] if len(src) == 1 or rng.random() < 0.5 else src[1]).num_heads[i])
        return VitArch(e, d, tuple(ratios), tuple(heads))

    # -- graphs ---------------------------------------------------------------------------------
    def encode(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        """A chain: the embedding node (labelled by embed dim), then per layer slot an attention node
        (``heads_h``) and an MLP node (``mlp_r``) - ``skip`` beyond the depth - and the output."""
        a = self._arch(arch)
        n = 2 + 2 * self.max_depth
        adj = np.zeros((n, n), dtype=np.float32)
        adj[np.arange(n - 1), np.arange(1, n)] = 1
        ops = np.zeros((n, len(self.labels)), dtype=np.float32)
        ops[0, self.labels.index(f"embed_{a.embed_dim}")] = 1
        for i in range(self.max_depth):
            if i < a.depth:
                ops[1 + 2 * i, self.labels.index(f"heads_{a.num_heads[i]}")] = 1
                ops[2 + 2 * i, self.labels.index(f"mlp_{a.mlp_ratio[i]}")] = 1
            else:
                ops[1 + 2 * i, self.labels.index("skip")] = ops[2 + 2 * i, self.labels.index("skip")] = 1
        ops[-1, -1] = 1
        return adj, ops

    def decode(self, adjacency: np.ndarray, ops: np.ndarray) -> VitArch | None:
        n = 2 + 2 * self.max_depth
        adj = np.asarray(adjacency)
        chain = np.zeros((n, n), dtype=np.float32)
        chain[np.arange(n - 1), np.arange(1, n)] = 1
        if adj.shape != (n, n) or not np.array_equal((adj > 0.5).astype(np.float32), chain):
            return None
        idx = one_hot_rows(ops, len(self.labels))
        if idx is None or len(idx) != n or idx[-1] != len(self.labels) - 1:
            return None
        labels = [self.labels[i] for i in idx]
        if not labels[0].startswith("embed_"):
            return None
        ratios, heads = [], []
        ended = False
        for i in range(self.max_depth):
            la, lm = labels[1 + 2 * i], labels[2 + 2 * i]
            if la == "skip" and lm == "skip":
                ended = True
                continue
            if ended or not la.startswith("heads_") or not lm.startswith("mlp_"):
                return None
            heads.append(int(la[len("heads_") :]))
            ratios.append(float(lm[len("mlp_") :]))
        try:
            return self.parse(VitArch(int(labels[0][len("embed_") :]), len(heads), tuple(ratios), tuple(heads)))
        except ArchitectureError:
            return None

    # -- networks -------------------------------------------------------------------------------
    def build(self, arch: Architecture | Any, num_classes: int | None = None) -> nn.Module:
        """A timm ``VisionTransformer`` of the subnet (fresh weights)."""
        a = self._arch(arch)
        return VitNetwork(
            a, self.img_size, self.patch_size, self.in_chans, num_classes, self.head_dim, self.qkv_bias,
            self.feature_stages, self.drop_path_rate, self.mask_token,
        )

    def supernet(self, drop_path_rate: float | None = None, **unknown: Any) -> VitSupernet:
        """The supernet of the largest choices (``drop_path_rate`` defaults to the space's)."""
        if unknown:
            raise ConfigError(f"space '{self.label}': unknown supernet option '{next(iter(unknown))}' (valid: drop_path_rate)")
        return VitSupernet(
            max(self.embed_dims), self.max_depth, max(self.num_heads), max(self.mlp_ratios), self.img_size,
            self.patch_size, self.in_chans, self.head_dim, self.qkv_bias, self.feature_stages,
            self.drop_path_rate if drop_path_rate is None else float(drop_path_rate),
        )

    def graph(self, arch: Architecture | Any) -> dict[str, list[tuple[str, str, str]]]:
        """The subnet as a chain of blocks labelled with their heads and MLP ratio, for drawing."""
        a = self.parse(arch)
        nodes = [f"embed {a.embed_dim}", *(f"L{i}" for i in range(a.depth)), "head"]
        labels = [f"h{h} r{_fmt_ratio(r)}" for h, r in zip(a.num_heads, a.mlp_ratio)] + [""]
        return {"transformer blocks (h: attention heads, r: MLP ratio)": [(nodes[i], nodes[i + 1], labels[i]) for i in range(len(nodes) - 1)]}

    def cost(self, arch: Architecture | Any) -> Cost:
        a = self._arch(arch)
        return Cost(*vit_cost(a, self.img_size, self.patch_size, self.in_chans, self.num_classes, self.head_dim, self.qkv_bias, self.mask_token))


def vit_cost(
    a: VitArch,
    img_size: int = 224,
    patch_size: int = 16,
    in_chans: int = 3,
    num_classes: int | None = 1000,
    head_dim: int = 64,
    qkv_bias: bool = True,
    mask_token: bool = False,
) -> tuple[int, int]:
    """(parameters, MACs) of the standalone subnet, in closed form."""
    e = a.embed_dim
    n = (img_size // patch_size) ** 2
    t = n + 1
    params = in_chans * patch_size * patch_size * e + e + e + t * e + (e if mask_token else 0)
    macs = n * in_chans * patch_size * patch_size * e
    for i in range(a.depth):
        hd, hid = a.num_heads[i] * head_dim, a.hidden(i)
        params += 2 * e + e * 3 * hd + (3 * hd if qkv_bias else 0) + hd * e + e + 2 * e + e * hid + hid + hid * e + e
        macs += t * (e * 3 * hd + hd * e + 2 * e * hid) + 2 * t * t * hd
    params += 2 * e
    if num_classes:
        params += e * num_classes + num_classes
        macs += e * num_classes
    return params, macs
