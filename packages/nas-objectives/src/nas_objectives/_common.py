"""Pieces every objective shares: input normalisation, patch masks and masked forwards, fixed-seed
generators, feature-pyramid inspection and content hashing.

Conventions (documented in the README):

* Images arrive as float RGB ``[B, 3, H, W]`` in ``[0, 1]``; objectives normalise them with the
  ImageNet mean/std before the backbone sees them.
* A patch mask is a boolean ``[B, H/p, W/p]`` tensor, ``True`` = hidden. Backbones that declare
  ``supports_patch_mask`` receive it (token masking, at their own patch size); every other backbone
  sees the masked pixels replaced by a per-channel mask token (pixel masking).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import torch
import torch.nn as nn

from nas_core import ConfigError, FeatureInfo, NasError, forward_features

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize",
    "default_patch_size",
    "backbone_patch_size",
    "supports_patch_mask",
    "choose_patch_size",
    "token_mask_factor",
    "random_patch_mask",
    "mask_to_pixels",
    "masked_forward",
    "patch_normalize",
    "feature_info_of",
    "fixed_generator",
    "eval_mode",
    "content_key",
    "hash_uniform",
    "check_image_batch",
    "unwrap",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside DDP / torch.compile wrappers."""
    inner = getattr(module, "module", None)
    if isinstance(inner, nn.Module):
        return inner
    return getattr(module, "_orig_mod", module)


def check_image_batch(images: Any, who: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise NasError(f"objective '{who}': images must be a float [B, C, H, W] tensor, got {shape}")
    if not images.is_floating_point():
        raise NasError(
            f"objective '{who}': images must be float in [0, 1], got dtype {images.dtype} (divide uint8 images by 255)"
        )
    return images


def normalize(images: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of ``[0, 1]`` images (grey or other channel counts use the averages)."""
    c = images.shape[1]
    if c == 3:
        mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    else:
        mean = torch.full((1, c, 1, 1), sum(IMAGENET_MEAN) / 3, device=images.device, dtype=images.dtype)
        std = torch.full((1, c, 1, 1), sum(IMAGENET_STD) / 3, device=images.device, dtype=images.dtype)
    return (images - mean) / std


def default_patch_size(img_size: int) -> int:
    """MAE-NAS: patch 4 on 32x32 (CIFAR), 8 on 224 (ImageNet); smaller images keep at least a 4x4 grid."""
    if img_size >= 128:
        return 8
    return max(1, min(4, img_size // 4))


def supports_patch_mask(module: nn.Module) -> bool:
    return bool(getattr(unwrap(module), "supports_patch_mask", False))


def backbone_patch_size(module: nn.Module) -> int | None:
    """The patch size of a token-masking backbone: its ``patch_size`` attribute when it has one (``None``
    there means "any grid"), else the reduction of a constant-reduction (ViT-like) pyramid, else ``None``."""
    inner = unwrap(module)
    if hasattr(inner, "patch_size"):
        p = inner.patch_size
        if p is None:
            return None
        if isinstance(p, (tuple, list)):
            p = p[0]
        return int(p)
    fi = getattr(inner, "feature_info", None)
    if fi is not None:
        try:
            reds = feature_info_of(inner).reduction()
        except (TypeError, ValueError, NasError):
            return None
        if len(set(reds)) == 1:
            return int(reds[0])
    return None


def choose_patch_size(module: nn.Module, patch_size: int | None, img_size: int) -> int:
    """The mask patch size: the configured one, else the MAE-NAS default for ``img_size`` rounded up to a
    multiple of the backbone's own patch size when the backbone masks tokens."""
    if patch_size is not None:
        return int(patch_size)
    p = default_patch_size(img_size)
    if supports_patch_mask(module):
        bp = backbone_patch_size(module)
        if bp:
            p = max(1, math.ceil(p / bp)) * bp
    return p


def token_mask_factor(module: nn.Module, patch: int) -> int | None:
    """How a mask at ``patch`` reaches ``module``: ``None`` for pixel masking, else the factor by which the
    mask grid is repeated to reach the backbone's token grid (1 = as is)."""
    if not supports_patch_mask(module):
        return None
    bp = backbone_patch_size(module)
    if bp is None:
        return 1
    if patch % bp == 0:
        return patch // bp
    return None


def random_patch_mask(
    batch: int,
    grid: tuple[int, int],
    ratio: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A boolean ``[B, gh, gw]`` mask hiding exactly ``round(ratio * gh * gw)`` patches per image (at least
    one hidden and one visible). With a ``generator`` the draw happens on its device (CPU) and is moved."""
    gh, gw = grid
    n = gh * gw
    if n < 2:
        raise ConfigError(f"a patch mask needs at least 2 patches, the grid is {gh}x{gw}; use a smaller patch_size")
    k = min(max(int(round(ratio * n)), 1), n - 1)
    gen_device = generator.device if generator is not None else device
    noise = torch.rand(batch, n, generator=generator, device=gen_device)
    ids = noise.argsort(dim=1)[:, :k]
    mask = torch.zeros(batch, n, dtype=torch.bool, device=gen_device)
    mask.scatter_(1, ids, True)
    mask = mask.view(batch, gh, gw)
    return mask.to(device) if device is not None else mask


def mask_to_pixels(mask: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B, gh, gw]`` patch mask -> ``[B, 1, gh*p, gw*p]`` pixel mask."""
    if patch == 1:
        return mask.unsqueeze(1)
    return mask.repeat_interleave(patch, 1).repeat_interleave(patch, 2).unsqueeze(1)


def masked_forward(
    module: nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor,
    patch: int,
    token: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Multi-scale features of ``module`` on ``x`` with the patches of ``mask`` hidden.

    Token masking when the module ``supports_patch_mask`` at a compatible patch size, else pixel masking:
    masked pixels become ``token`` (a per-channel value; zeros, i.e. the data mean, when ``None``).
    """
    factor = token_mask_factor(module, patch)
    if factor is not None:
        m = mask if factor == 1 else mask.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
        return forward_features(module, x, mask=m)
    pix = mask_to_pixels(mask, patch)
    if pix.shape[-2:] != x.shape[-2:]:
        raise ConfigError(
            f"the {tuple(mask.shape[-2:])} patch mask at patch size {patch} does not cover a {tuple(x.shape[-2:])} image"
        )
    fill = token.to(x.dtype).view(1, -1, 1, 1) if token is not None else x.new_zeros(())
    return forward_features(module, torch.where(pix, fill, x))


def patch_normalize(t: torch.Tensor, patch: int, eps: float = 1e-6) -> torch.Tensor:
    """Normalise every ``patch x patch`` patch by its own mean and std over pixels and channels (MAE)."""
    b, c, h, w = t.shape
    v = t.reshape(b, c, h // patch, patch, w // patch, patch)
    mean = v.mean(dim=(1, 3, 5), keepdim=True)
    var = v.var(dim=(1, 3, 5), keepdim=True, unbiased=False)
    return ((v - mean) / (var + eps).sqrt()).reshape(b, c, h, w)


def _timm_dicts(fi: Any) -> list[dict[str, Any]] | None:
    get = getattr(fi, "get_dicts", None)
    if callable(get):
        return [dict(d) for d in get()]
    return None


def feature_info_of(module: nn.Module, img_size: int | None = None, in_chans: int = 3) -> FeatureInfo:
    """``feature_info`` of a backbone as a :class:`nas_core.FeatureInfo`: read from the module (ours or
    timm's), or, when it has none, measured by one forward pass on zeros of ``img_size``."""
    inner = unwrap(module)
    fi = getattr(inner, "feature_info", None)
    if fi is not None:
        dicts = _timm_dicts(fi)
        return FeatureInfo(dicts) if dicts is not None else FeatureInfo.coerce(fi)
    if img_size is None:
        raise ConfigError(
            f"{type(inner).__name__} has no feature_info; pass img_size so it can be measured with one forward pass"
        )
    param = next(iter(inner.parameters()), None)
    dev = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    with eval_mode(inner), torch.no_grad():
        feats = forward_features(inner, torch.zeros(2, in_chans, img_size, img_size, device=dev, dtype=dtype))
    stages = []
    for i, f in enumerate(feats):
        if f.dim() != 4:
            raise ConfigError(
                f"{type(inner).__name__} returned a {tuple(f.shape)} output at stage {i}; a backbone returns NCHW maps"
            )
        stages.append({"num_chs": int(f.shape[1]), "reduction": max(1, img_size // int(f.shape[-1])), "module": f"out.{i}"})
    return FeatureInfo(stages)


def fixed_generator(seed: int) -> torch.Generator:
    """A fresh CPU generator: the same draws on every call (scores are repeatable)."""
    return torch.Generator().manual_seed(int(seed))


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` (and its children) in eval mode inside the block; restore every flag after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, was in modes:
            m.training = was


# -- content hashing (random labels tied to images without indices) ---------------------------------
_M61 = (1 << 61) - 1
_P31 = (1 << 31) - 1
_COEFS: dict[tuple[int, int, str], torch.Tensor] = {}


def _coefs(d: int, seed: int, device: torch.device) -> torch.Tensor:
    key = (d, int(seed), str(device))
    c = _COEFS.get(key)
    if c is None:
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 12_345)
        c = torch.randint(1, _P31, (d,), generator=g, dtype=torch.int64).to(device)
        if len(_COEFS) > 64:
            _COEFS.clear()
        _COEFS[key] = c
    return c


def content_key(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A 61-bit key per image from its content (``[B] int64``), identical on every device.

    Pixels are quantised to 8 bits (so images holding 8-bit data, values ``k/255``, keep their key under
    float noise below 1/510, e.g. after a dtype round trip), then combined by a seeded random linear hash modulo the Mersenne prime 2^61-1 (a universal hash family: two
    different images collide with probability ~2^-61). Exact integer arithmetic: no overflow for images
    up to ~8M values.
    """
    q = (images.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.int64).flatten(1) + 1
    c = _coefs(q.shape[1], seed, q.device)
    return (q * c).sum(dim=1) % _M61


def hash_uniform(key: torch.Tensor, salt: int) -> torch.Tensor:
    """Map keys to integers uniform in ``[0, 2^31-1)`` with a salted second hash (two affine rounds mod 2^31-1)."""
    g = torch.Generator().manual_seed(int(salt) + 7)
    a1, b1, a2, b2 = (int(v) for v in torch.randint(1, _P31, (4,), generator=g, dtype=torch.int64))
    h = key % _P31
    h = (h * a1 + b1) % _P31
    h = ((h ^ (h >> 13)) * a2 + b2) % _P31
    return h

