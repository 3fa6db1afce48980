"""``colorization`` (UnNAS, after Zhang et al. 2016): grayscale in, per-pixel classification over quantised
ab colour bins of the CIE Lab image, with optional class rebalancing. Colour conversion runs in torch."""

from __future__ import annotations

import functools
import math
from typing import ClassVar, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import ConfigError, FeatureInfo, Objective

from ._common import check_image_batch, eval_mode
from ._decoders import HierarchicalDecoder
from ._pretext import SCORE_METRICS

__all__ = ["Colorization", "rgb_to_lab", "lab_to_rgb", "ABBins", "ab_bins"]

# sRGB (D65) <-> XYZ, as in IEC 61966-2-1 / scikit-image
_RGB2XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]], dtype=torch.float64
)
_WHITE = (0.95047, 1.0, 1.08883)
_EPS = (6.0 / 29.0) ** 3


def _no_autocast(x: torch.Tensor) -> torch.autocast:
    return torch.autocast(device_type=x.device.type, enabled=False)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``[B, 3, H, W]`` in [0, 1] -> CIE Lab (D65): L in [0, 100], a/b roughly in [-110, 110]."""
    with _no_autocast(rgb):
        x = rgb.float().clamp(0.0, 1.0)
        lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055).pow(2.4), x / 12.92)
        m = _RGB2XYZ.to(torch.float32).to(x.device)
        xyz = torch.einsum("ij,bjhw->bihw", m, lin)
        white = torch.tensor(_WHITE, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
        t = xyz / white
        f = torch.where(t > _EPS, t.clamp_min(1e-12).pow(1.0 / 3.0), t / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
        fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
        lab = torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)
    return lab


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab (D65) ``[B, 3, H, W]`` -> sRGB in [0, 1] (out-of-gamut colours clipped)."""
    with _no_autocast(lab):
        lab = lab.float()
        fy = (lab[:, 0] + 16.0) / 116.0
        fx = fy + lab[:, 1] / 500.0
        fz = fy - lab[:, 2] / 200.0
        f = torch.stack([fx, fy, fz], dim=1)
        d = 6.0 / 29.0
        t = torch.where(f > d, f.pow(3), 3 * d * d * (f - 4.0 / 29.0))
        white = torch.tensor(_WHITE, device=lab.device, dtype=torch.float32).view(1, 3, 1, 1)
        xyz = t * white
        m_inv = torch.linalg.inv(_RGB2XYZ).to(torch.float32).to(lab.device)
        lin = torch.einsum("ij,bjhw->bihw", m_inv, xyz).clamp(0.0, 1.0)
        rgb = torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(1e-12).pow(1 / 2.4) - 0.055, 12.92 * lin)
    return rgb.clamp(0.0, 1.0)


class ABBins:
    """Quantisation of the ab plane into a ``bin_size`` grid, restricted to the bins the sRGB gamut reaches.

    A dense sample of the sRGB cube (``samples`` levels per channel) is converted to Lab; the grid
    cells it hits are the classes (Zhang et al. use bin size 10, giving their 313 in-gamut bins at
    every lightness; the exact count depends on the sampling). ``index(ab)`` maps ab values to the
    nearest in-gamut bin (a lookup table over the whole grid, so off-gamut values map too).
    """

    def __init__(self, bin_size: float = 10.0, samples: int = 64, limit: float = 110.0):
        if bin_size <= 0:
            raise ConfigError(f"colorization: bin_size must be positive, got {bin_size}")
        self.bin_size = float(bin_size)
        self.half = int(math.ceil(limit / self.bin_size))
        side = 2 * self.half + 1
        levels = torch.linspace(0, 1, samples)
        cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij"), 0).reshape(1, 3, -1, 1)
        ab = rgb_to_lab(cube)[0, 1:, :, 0].T  # [S, 2]
        full = self._full_index(ab)
        hit = torch.unique(full)
        self.full_side = side
        coords = torch.stack([hit // side, hit % side], 1).double()
        self.centers = ((coords - self.half) * self.bin_size).float()  # [Q, 2] (a, b)
        # nearest in-gamut bin for every grid cell
        grid = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2).double()
        d = torch.cdist(grid, coords)
        self.lut = d.argmin(dim=1)  # [side*side] -> class
        self._lut_dev: dict[str, torch.Tensor] = {}

    @property
    def num_bins(self) -> int:
        return int(self.centers.shape[0])

    def _full_index(self, ab: torch.Tensor) -> torch.Tensor:
        q = torch.round(ab / self.bin_size).long() + self.half
        q = q.clamp(0, 2 * self.half)
        return q[..., 0] * (2 * self.half + 1) + q[..., 1]

    def index(self, ab: torch.Tensor) -> torch.Tensor:
        """``[B, 2, H, W]`` ab -> ``[B, H, W]`` class indices."""
        key = str(ab.device)
        lut = self._lut_dev.get(key)
        if lut is None:
            lut = self._lut_dev[key] = self.lut.to(ab.device)
        full = self._full_index(ab.permute(0, 2, 3, 1))
        return lut[full]


def pixel_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel cross-entropy ``[B, H, W]`` of ``[B, Q, H, W]`` logits. Channels-last logits (what the CPU's
    channels-last supernets produce) go through the ``[B*H*W, Q]`` kernel, a view without a copy: about 1.8x
    faster on the CPU, forward and backward, than the class-dimension kernel on that layout."""
    if logits.dim() == 4 and not logits.is_contiguous() and logits.is_contiguous(memory_format=torch.channels_last):
        b, q, h, w = logits.shape
        flat = logits.permute(0, 2, 3, 1).reshape(b * h * w, q)
        return F.cross_entropy(flat, y.reshape(-1), reduction="none").view(b, h, w)
    return F.cross_entropy(logits, y, reduction="none")


@functools.lru_cache(maxsize=8)
def ab_bins(bin_size: float = 10.0) -> ABBins:
    """Cached :class:`ABBins` for ``bin_size``."""
    return ABBins(bin_size)


class Colorization(Objective):
    """Predict the colours of a grayscale image as a per-pixel classification over ab bins.

    :param bin_size: ab grid step (Zhang et al.: 10); only bins inside the sRGB gamut are classes.
    :param rebalance: weight each pixel's loss by the inverse of the smoothed empirical prior of its
        colour class mixed with a uniform one (Zhang et al. eq. 4). The prior is counted from the
        training batches seen so far, or fixed by :meth:`fit_prior`.
    :param rebalance_lambda: the uniform mixing weight (0.5 in Zhang et al.).
    :param prior_sigma: Gaussian smoothing (in ab units) of the empirical prior (5 in Zhang et al.).
    :param out_reduction: the prediction's reduction (default: the finest stage's); the ab targets are
        averaged to that resolution before quantisation.
    :param decoder_dim: width of the multi-scale decoder (per-stage 1x1 alignment, upsample, sum, GELU,
        1x1 to the bin logits).
    :param score_metric: ``loss`` (negative unweighted cross-entropy, default) or ``accuracy`` (per pixel).
    """

    requires_labels: ClassVar[bool] = False

    def __init__(
        self,
        *,
        bin_size: float = 10.0,
        rebalance: bool = False,
        rebalance_lambda: float = 0.5,
        prior_sigma: float = 5.0,
        out_reduction: int | None = None,
        decoder_dim: int | None = None,
        score_metric: str = "loss",
    ):
        super().__init__()
        name = self._name()
        if score_metric not in SCORE_METRICS:
            raise ConfigError(f"objective '{name}': score_metric must be one of {', '.join(SCORE_METRICS)}")
        if not 0.0 <= float(rebalance_lambda) <= 1.0:
            raise ConfigError(f"objective '{name}': rebalance_lambda must be in [0, 1], got {rebalance_lambda}")
        if out_reduction is not None and int(out_reduction) < 1:
            raise ConfigError(f"objective '{name}': out_reduction must be >= 1, got {out_reduction}")
        self.bins = ab_bins(float(bin_size))
        self.rebalance = bool(rebalance)
        self.rebalance_lambda = float(rebalance_lambda)
        self.prior_sigma = float(prior_sigma)
        self.out_reduction_cfg = out_reduction
        self.decoder_dim = decoder_dim
        self.score_metric = score_metric

    def _name(self) -> str:
        return self.registered_name or type(self).__name__.lower()

    @property
    def num_bins(self) -> int:
        return self.bins.num_bins

    def build_heads(self, feature_info: FeatureInfo) -> None:
        self.out_reduction = int(self.out_reduction_cfg or min(feature_info.reduction()))
        self.decoder = HierarchicalDecoder(feature_info, self.num_bins, dim=self.decoder_dim, act=nn.GELU)
        self.register_buffer("ab_counts", torch.zeros(self.num_bins))  # float32: every device has it
        self.register_buffer("prior_fixed", torch.zeros((), dtype=torch.bool))

    # -- data --------------------------------------------------------------------------------------
    def split(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(normalised grayscale input replicated to in_chans, [B, h, w] ab class targets)``."""
        images = check_image_batch(images, self._name())
        h, w = images.shape[-2:]
        r = self.out_reduction
        if h % r or w % r:
            raise ConfigError(f"objective '{self._name()}': {h}x{w} images are not divisible by out_reduction {r}")
        lab = rgb_to_lab(images)
        gray = (lab[:, :1] / 100.0 - 0.5) / 0.25
        x = gray.expand(-1, self.in_chans, -1, -1).to(images.dtype)
        ab = lab[:, 1:]
        if r > 1:
            ab = F.avg_pool2d(ab, r)
        return x, self.bins.index(ab)

    # -- rebalancing -------------------------------------------------------------------------------
    @torch.no_grad()
    def fit_prior(self, data: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
        """Count the colour prior on ``data`` (an image batch or an iterable of batches), fix it (training no
        longer updates it) and return the class weights."""
        if not self.is_setup:
            raise ConfigError(f"objective '{self._name()}': call setup() before fit_prior()")
        batches = [data] if isinstance(data, torch.Tensor) else data
        counts = torch.zeros(self.num_bins)
        for batch in batches:
            if isinstance(batch, (tuple, list)):
                batch = batch[0]
            _, y = self.split(batch)
            counts += torch.bincount(y.flatten().cpu(), minlength=self.num_bins).float()
        self.ab_counts.copy_(counts.to(self.ab_counts.device))
        self.prior_fixed.fill_(True)
        return self.class_weights()

    def class_weights(self) -> torch.Tensor:
        """Zhang et al. eq. 4: ``w ~ ((1 - lambda) * smooth(p) + lambda / Q)^-1``, normalised so ``E_p[w] = 1``."""
        counts = self.ab_counts.float()
        q = self.num_bins
        if float(counts.sum()) <= 0:
            return torch.ones(q, device=counts.device)
        p = counts / counts.sum()
        c = self.bins.centers.to(counts.device)
        kernel = torch.exp(-torch.cdist(c, c).pow(2) / (2 * self.prior_sigma**2))
        p = kernel @ p
        p = p / p.sum()
        w = 1.0 / ((1 - self.rebalance_lambda) * p + self.rebalance_lambda / q)
        return w / (p * w).sum()

    # -- objective ---------------------------------------------------------------------------------
    def _logits(self, backbone: nn.Module, x: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
        from nas_core import forward_features

        feats = forward_features(backbone, x)
        return self.decoder(feats, out_hw)

    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        x, y = self.split(images)
        logits = self._logits(backbone, x, tuple(y.shape[-2:]))
        ce = pixel_cross_entropy(logits.float(), y)
        if not self.rebalance:
            return ce.mean()
        if self.training and not bool(self.prior_fixed):
            with torch.no_grad():
                self.ab_counts += torch.bincount(y.flatten(), minlength=self.num_bins).to(self.ab_counts.dtype)
        w = self.class_weights().to(ce.device)
        return (ce * w[y]).mean()

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        x, y = self.split(images)
        with eval_mode(self):
            logits = self._logits(backbone, x, tuple(y.shape[-2:])).float()
        if self.score_metric == "accuracy":
            return float((logits.argmax(1) == y).float().mean())
        return -float(pixel_cross_entropy(logits, y).mean())

    @torch.no_grad()
    def colorize(self, backbone: nn.Module, images: torch.Tensor, temperature: float = 0.38) -> torch.Tensor:
        """RGB images from the predicted colours: annealed mean of the bin distribution (Zhang et al.,
        T = 0.38) upsampled to the input size, with the input's own lightness."""
        x, y = self.split(images)
        with eval_mode(self):
            logits = self._logits(backbone, x, tuple(y.shape[-2:])).float()
        prob = F.softmax(logits / temperature, dim=1)
        ab = torch.einsum("bqhw,qc->bchw", prob, self.bins.centers.to(prob.device))
        ab = F.interpolate(ab, size=images.shape[-2:], mode="bilinear", align_corners=False)
        lab = torch.cat([rgb_to_lab(images)[:, :1], ab], dim=1)
        return lab_to_rgb(lab)

    def extra_repr(self) -> str:
        return f"bins={self.num_bins} (step {self.bins.bin_size:g}), rebalance={self.rebalance}"

