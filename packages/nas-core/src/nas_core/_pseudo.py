"""Label-free pseudo-classes of an image batch (k-means), for losses that need classes but must not see labels.

Used where a zero-cost proxy differentiates a classification loss and the search is label-free: the proxies of
nas-proxies (epe_nas' classes, the `nas proxies` command) and the proxy-driven strategies of nas-strategies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._errors import ConfigError

__all__ = ["pseudo_targets"]


def pseudo_targets(images: torch.Tensor, num_classes: int = 10, *, seed: int = 0, iters: int = 30) -> torch.Tensor:
    """Label-free pseudo-classes: k-means (k-means++ seeding, Lloyd iterations, fixed seed) on 4x4
    average-pooled pixels. Deterministic; ``min(num_classes, batch)`` clusters; returned on ``images.device``."""
    if images.dim() != 4:
        raise ConfigError(f"pseudo_targets expects [B, C, H, W] images, got shape {tuple(images.shape)}")
    n = images.shape[0]
    k = max(1, min(int(num_classes), n))
    feats = F.adaptive_avg_pool2d(images.detach().float(), 4).reshape(n, -1).cpu().double()
    g = torch.Generator().manual_seed(int(seed))
    # k-means++ seeding
    first = int(torch.randint(n, (1,), generator=g))
    centers = [feats[first]]
    d2 = ((feats - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = float(d2.sum())
        if total <= 0:  # fewer distinct points than clusters
            idx = int(torch.randint(n, (1,), generator=g))
        else:
            idx = int(torch.multinomial(d2 / total, 1, generator=g))
        centers.append(feats[idx])
        d2 = torch.minimum(d2, ((feats - feats[idx]) ** 2).sum(1))
    c = torch.stack(centers)
    labels = torch.cdist(feats, c).argmin(1)
    for _ in range(iters):
        for j in range(k):
            members = feats[labels == j]
            if len(members):
                c[j] = members.mean(0)
        new = torch.cdist(feats, c).argmin(1)
        if torch.equal(new, labels):
            break
        labels = new
    return labels.to(images.device)
