"""DenoiseObjective: a label-free objective - predict the clean image from a noisy copy.

It shows the whole objective contract: heads built from ``feature_info`` alone (so it works on any space), a
differentiable ``loss``, and a repeatable ``score`` (its noise comes from a fixed seed).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import ConfigError, FeatureInfo, Objective, forward_features


class DenoiseObjective(Objective):
    """Gaussian noise of standard deviation ``noise`` is added to the images; a 1x1 convolution on the backbone's
    last stage, upsampled to the input size, predicts the clean pixels (mean squared error).

    :param noise: standard deviation of the noise, in units of the (normalised) pixel values.
    :param seed: seed of the noise ``score`` uses, so two calls on the same network agree.
    """

    def __init__(self, noise: float = 0.3, seed: int = 0):
        super().__init__()
        if not noise > 0:
            raise ConfigError(f"objective 'denoise': noise must be > 0, got {noise}")
        self.noise, self.seed = float(noise), int(seed)
        self.head: nn.Module = nn.Identity()

    def build_heads(self, feature_info: FeatureInfo) -> None:
        self.head = nn.Conv2d(feature_info.channels()[-1], self.in_chans, kernel_size=1)

    def _denoise(self, backbone: nn.Module, noisy: torch.Tensor) -> torch.Tensor:
        last = forward_features(backbone, noisy)[-1]
        return F.interpolate(self.head(last), size=noisy.shape[-2:], mode="bilinear", align_corners=False)

    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        noisy = images + self.noise * torch.randn_like(images)
        return F.mse_loss(self._denoise(backbone, noisy), images)

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        noise = torch.randn(images.shape, generator=g).to(images.device, images.dtype)
        return -float(F.mse_loss(self._denoise(backbone, images + self.noise * noise), images))
