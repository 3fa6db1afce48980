"""The fixed image batches strategies score on, and the class count of the networks they build."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from nas_core import DataError, SearchSpace

__all__ = ["split_batch", "first_images", "proxy_images", "num_classes_for"]


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``images`` or ``(images, labels, ...)`` from a DataLoader -> (images, labels or None)."""
    if isinstance(batch, (list, tuple)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def first_images(data: Any, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A fixed batch of ``n`` images (and labels when the data yields them) drawn with ``seed``."""
    if data is None:
        raise DataError("this strategy needs image data (pass data=..., e.g. nas_core.load_data())")
    total = len(data)
    if total == 0:
        raise DataError("the data holds no images")
    idx = np.random.default_rng(seed).permutation(total)[: min(n, total)]
    imgs, labels = [], []
    for i in idx.tolist():
        item = data[i]
        if isinstance(item, (tuple, list)):
            imgs.append(item[0])
            labels.append(int(item[1]))
        else:
            imgs.append(item)
    images = torch.stack(imgs)
    targets = torch.tensor(labels, dtype=torch.long) if labels else None
    return images, targets


def proxy_images(data: Any, n: int, seed: int, proxies: Sequence[Any], space: SearchSpace) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fixed batch proxies score networks on: ``n`` images of the data, or, without data and when every
    proxy is data-free, seeded uniform noise at the space's input size (``img_size``, default 32)."""
    if data is None and proxies and all(getattr(p, "data_free", False) for p in proxies):
        size = int(getattr(space, "img_size", 32) or 32)
        chans = int(getattr(space, "in_chans", 3) or 3)
        g = torch.Generator().manual_seed(int(seed))
        return torch.rand(n, chans, size, size, generator=g), None
    if data is None:
        names = ", ".join(getattr(p, "registered_name", "") or type(p).__name__ for p in proxies if not getattr(p, "data_free", False))
        raise DataError(f"proxy {names} scores networks on images: pass data=... (e.g. nas_core.load_data())")
    return first_images(data, n, seed)


def num_classes_for(space: SearchSpace, data: Any, num_classes: int | None) -> int:
    """Classes of the standalone networks proxies score: the option, the data's, the space's, or 10."""
    if num_classes is not None:
        return int(num_classes)
    for src in (getattr(data, "num_classes", None), getattr(space, "num_classes", None)):
        if src:
            return int(src)
    return 10
