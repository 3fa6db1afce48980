"""``mim``: masked image modelling (SimMIM as used by MAE-NAS), with MAE-NAS's hierarchical decoder."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from nas_core import ConfigError, FeatureInfo, Objective

from ._common import (
    check_image_batch,
    choose_patch_size,
    eval_mode,
    fixed_generator,
    mask_to_pixels,
    masked_forward,
    normalize,
    patch_normalize,
    random_patch_mask,
    token_mask_factor,
)
from ._decoders import DECODERS, build_decoder

__all__ = ["MIM", "masked_reconstruction_loss"]

_LOSSES = ("l1", "l2")


def masked_reconstruction_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    patch: int,
    *,
    kind: str = "l1",
    norm_pix: bool = False,
) -> torch.Tensor:
    """Mean L1/L2 error over the masked pixels only (SimMIM); ``norm_pix`` compares with targets normalised
    per patch (MAE, MaskTAS eq. 10). Pixels outside the mask do not influence the value at all."""
    pred, target = pred.float(), target.float()
    if norm_pix:
        target = patch_normalize(target, patch)
    diff = pred - target
    err = diff.abs() if kind == "l1" else diff.pow(2)
    pix = mask_to_pixels(mask, patch).expand_as(err)
    err = torch.where(pix, err, torch.zeros((), dtype=err.dtype, device=err.device))
    return err.sum() / pix.sum().clamp_min(1)


class MIM(Objective):
    """Masked image modelling: hide random patches, reconstruct their pixels from the rest.

    :param mask_ratio: fraction of patches hidden per image (MAE-NAS: 0.5).
    :param patch_size: mask patch size; default from the image size (4 for 32x32, 8 for 224) or, for
        token-masking backbones, a multiple of their own patch size.
    :param decoder: ``hierarchical`` (MAE-NAS eq. 3, default), ``simple`` (SimMIM) or ``transformer``
        (MAE-style, 2 blocks).
    :param decoder_dim: decoder width (hierarchical: narrowest stage within 8..64; transformer: 128).
    :param decoder_depth: transformer blocks of the ``transformer`` decoder.
    :param loss: ``l1`` (SimMIM, default) or ``l2``.
    :param norm_pix_loss: compare with per-patch normalised targets (MAE).
    :param seed: seed of the masks ``score`` draws (the same masks on every call, for every architecture).
    :param score_repeats: masks drawn per image by ``score`` (averaged).

    ``loss(backbone, images, targets=None, *, mask=None)``: a float tensor ``targets`` shaped like
    ``images`` replaces the reconstruction target (class labels are ignored); ``mask`` (bool
    ``[B, H/p, W/p]``) fixes the mask instead of drawing one.
    """

    requires_labels: ClassVar[bool] = False

    def __init__(
        self,
        *,
        mask_ratio: float = 0.5,
        patch_size: int | None = None,
        decoder: str = "hierarchical",
        decoder_dim: int | None = None,
        decoder_depth: int = 2,
        loss: str = "l1",
        norm_pix_loss: bool = False,
        seed: int = 0,
        score_repeats: int = 1,
    ):
        super().__init__()
        name = self._name()
        if not 0.0 < float(mask_ratio) < 1.0:
            raise ConfigError(f"objective '{name}': mask_ratio must be in (0, 1), got {mask_ratio}")
        if patch_size is not None and int(patch_size) < 1:
            raise ConfigError(f"objective '{name}': patch_size must be a positive integer, got {patch_size}")
        if decoder not in DECODERS:
            raise ConfigError(f"objective '{name}': unknown decoder '{decoder}' (valid: {', '.join(DECODERS)})")
        if loss not in _LOSSES:
            raise ConfigError(f"objective '{name}': loss must be one of {', '.join(_LOSSES)}, got '{loss}'")
        if int(score_repeats) < 1:
            raise ConfigError(f"objective '{name}': score_repeats must be >= 1, got {score_repeats}")
        self.mask_ratio = float(mask_ratio)
        self.patch_size = None if patch_size is None else int(patch_size)
        self.decoder_kind = decoder
        self.decoder_dim = decoder_dim
        self.decoder_depth = int(decoder_depth)
        self.loss_kind = loss
        self.norm_pix_loss = bool(norm_pix_loss)
        self.seed = int(seed)
        self.score_repeats = int(score_repeats)

    def _name(self) -> str:
        return self.registered_name or type(self).__name__.lower()

    # -- heads -------------------------------------------------------------------------------------
    def build_heads(self, feature_info: FeatureInfo) -> None:
        self.mask_token = nn.Parameter(torch.zeros(self.in_chans))
        self.decoder = build_decoder(
            self.decoder_kind,
            feature_info,
            self.in_chans,
            img_size=self.img_size,
            dim=self.decoder_dim,
            depth=self.decoder_depth,
        )

    # -- masks -------------------------------------------------------------------------------------
    def patch_for(self, backbone: nn.Module, images: torch.Tensor) -> int:
        """The mask patch size used for ``backbone`` on these images."""
        p = choose_patch_size(backbone, self.patch_size, images.shape[-1])
        if images.shape[-1] % p or images.shape[-2] % p:
            raise ConfigError(
                f"objective '{self._name()}': {tuple(images.shape[-2:])} images are not divisible into {p}x{p} patches; "
                f"set patch_size to a divisor of the image size"
            )
        return p

    def draw_mask(
        self, backbone: nn.Module, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, int]:
        """A random patch mask for ``images`` (from ``generator`` when given, else torch's global RNG)."""
        p = self.patch_for(backbone, images)
        grid = (images.shape[-2] // p, images.shape[-1] // p)
        mask = random_patch_mask(images.shape[0], grid, self.mask_ratio, generator=generator, device=images.device)
        return mask, p

    # -- forward -----------------------------------------------------------------------------------
    def encode(self, backbone: nn.Module, x: torch.Tensor, mask: torch.Tensor, patch: int) -> list[torch.Tensor]:
        """Backbone features of normalised images ``x`` with the patches of ``mask`` hidden."""
        return masked_forward(backbone, x, mask, patch, self.mask_token)

    def _token_unused(self, backbone: nn.Module, patch: int) -> torch.Tensor | float:
        # token masking leaves the pixel mask token out of the graph; keep it in (zero) for DDP
        return 0.0 * self.mask_token.sum() if token_mask_factor(backbone, patch) is not None else 0.0

    def _target(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        if isinstance(targets, torch.Tensor) and targets.is_floating_point() and targets.shape == images.shape:
            return normalize(targets)
        return normalize(images)

    def _recon_loss(
        self, backbone: nn.Module, images: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch: int
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = normalize(images)
        feats = self.encode(backbone, x, mask, patch)
        pred = self.decoder(feats, images.shape[-2:])
        loss = masked_reconstruction_loss(pred, target, mask, patch, kind=self.loss_kind, norm_pix=self.norm_pix_loss)
        return loss, feats

    def _check_mask(self, images: torch.Tensor, mask: torch.Tensor) -> int:
        if mask.dtype != torch.bool or mask.dim() != 3 or mask.shape[0] != images.shape[0]:
            raise ConfigError(f"objective '{self._name()}': mask must be bool [B, H/p, W/p], got {mask.dtype} {tuple(mask.shape)}")
        p = images.shape[-1] // mask.shape[-1]
        if p * mask.shape[-1] != images.shape[-1] or p * mask.shape[-2] != images.shape[-2]:
            raise ConfigError(
                f"objective '{self._name()}': a {tuple(mask.shape[-2:])} mask does not tile {tuple(images.shape[-2:])} images"
            )
        return p

    def loss(
        self,
        backbone: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        images = check_image_batch(images, self._name())
        if mask is None:
            mask, patch = self.draw_mask(backbone, images)
        else:
            patch = self._check_mask(images, mask)
            mask = mask.to(images.device)
        return self._masked_loss(backbone, images, self._target(images, targets), mask, patch) + self._token_unused(backbone, patch)

    def _masked_loss(self, backbone: nn.Module, images: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch: int) -> torch.Tensor:
        """The training loss on one mask: masked reconstruction (``distill`` adds its feature term)."""
        loss, _ = self._recon_loss(backbone, images, target, mask, patch)
        return loss

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        """Negative reconstruction loss on masks drawn from a generator seeded with ``seed``: the same
        masks on every call and for every architecture (given the same images)."""
        images = check_image_batch(images, self._name())
        gen = fixed_generator(self.seed)
        target = normalize(images)
        total = 0.0
        with eval_mode(self):
            for _ in range(self.score_repeats):
                mask, patch = self.draw_mask(backbone, images, gen)
                loss, _ = self._recon_loss(backbone, images, target, mask, patch)
                total += float(loss)
        return -total / self.score_repeats

    @torch.no_grad()
    def reconstruct(self, backbone: nn.Module, images: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reconstruction in [0, 1], pixel mask)`` for inspection: visible pixels are copied from the input,
        masked ones predicted (not meaningful with ``norm_pix_loss``, whose predictions are per-patch normalised)."""
        from ._common import IMAGENET_MEAN, IMAGENET_STD

        if mask is None:
            mask, patch = self.draw_mask(backbone, images, fixed_generator(self.seed))
        else:
            patch = self._check_mask(images, mask)
        with eval_mode(self):
            feats = self.encode(backbone, normalize(images), mask, patch)
            pred = self.decoder(feats, images.shape[-2:]).float()
        if images.shape[1] == 3:
            mean = torch.tensor(IMAGENET_MEAN, device=pred.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=pred.device).view(1, 3, 1, 1)
            pred = pred * std + mean
        pix = mask_to_pixels(mask, patch)
        return torch.where(pix, pred.clamp(0, 1), images.float()), pix

    def extra_repr(self) -> str:
        return (
            f"mask_ratio={self.mask_ratio}, patch_size={self.patch_size or 'auto'}, decoder={self.decoder_kind}, "
            f"loss={self.loss_kind}, norm_pix_loss={self.norm_pix_loss}"
        )

