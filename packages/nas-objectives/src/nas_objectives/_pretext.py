"""UnNAS's image-level pretext tasks: ``rotation`` (4-way) and ``jigsaw`` (permutation classification).

Both generate their labels from the images alone and expose them through
``pretext_targets(images) -> (inputs, class indices)`` for label-free proxies (jacov, epe_nas).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import ConfigError, FeatureInfo, Objective, forward_features

from ._common import check_image_batch, eval_mode, fixed_generator, normalize

__all__ = ["Rotation", "Jigsaw", "hamming_permutations", "min_hamming_distance", "SCORE_METRICS"]

SCORE_METRICS = ("loss", "accuracy")


def _score_value(logits: torch.Tensor, labels: torch.Tensor, metric: str) -> float:
    if metric == "accuracy":
        return float((logits.argmax(-1) == labels).float().mean())
    return -float(F.cross_entropy(logits.float(), labels))


class _PretextBase(Objective):
    def __init__(self, score_metric: str) -> None:
        super().__init__()
        if score_metric not in SCORE_METRICS:
            raise ConfigError(
                f"objective '{self._name()}': score_metric must be one of {', '.join(SCORE_METRICS)}, got '{score_metric}'"
            )
        self.score_metric = score_metric

    def _name(self) -> str:
        return self.registered_name or type(self).__name__.lower()


class Rotation(_PretextBase):
    """UnNAS rotation (Gidaris et al.): predict which of 4 rotations (0, 90, 180, 270 degrees) an image
    underwent, a 4-way linear classifier on the globally pooled last stage.

    :param rotations: what one training batch of ``B`` images becomes. ``all`` (default, Gidaris et
        al.): every image in all 4 rotations, ``4B`` inputs; ``one`` (UnNAS' wording: "the input image
        undergoes one of four preset rotations"): each image in one rotation drawn at random, ``B``
        inputs, a quarter of the compute per step.
    :param score_metric: ``loss`` (negative cross-entropy, default: fine-grained) or ``accuracy``
        (UnNAS's pretext accuracy) on all 4 rotations of the given images (no randomness, either way).
    """

    requires_labels: ClassVar[bool] = False
    ROTATIONS: ClassVar[tuple[str, ...]] = ("all", "one")

    def __init__(self, *, rotations: str = "all", score_metric: str = "loss"):
        super().__init__(score_metric)
        if rotations not in self.ROTATIONS:
            raise ConfigError(
                f"objective '{self._name()}': rotations must be one of {', '.join(self.ROTATIONS)}, got {rotations!r}"
            )
        self.rotations = rotations

    def build_heads(self, feature_info: FeatureInfo) -> None:
        self.head = nn.Linear(feature_info.channels()[-1], 4)

    @property
    def num_pretext_classes(self) -> int:
        return 4

    def pretext_targets(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(4B rotated images in [0, 1], rotation index 0..3)``, rotation-major."""
        images = self._square_batch(images)
        inputs = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
        labels = torch.arange(4, device=images.device).repeat_interleave(images.shape[0])
        return inputs, labels

    def _logits(self, backbone: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        feat = forward_features(backbone, normalize(inputs))[-1]
        return self.head(feat.mean(dim=(2, 3)))

    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        if self.rotations == "all":
            inputs, labels = self.pretext_targets(images)
        else:
            inputs, labels = self.rotate_one(images)
        return F.cross_entropy(self._logits(backbone, inputs).float(), labels)

    def rotate_one(self, images: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B images, each rotated by its own random multiple of 90 degrees, that multiple 0..3)``."""
        images = self._square_batch(images)
        gdev = generator.device if generator is not None else images.device
        labels = torch.randint(4, (images.shape[0],), generator=generator, device=gdev).to(images.device)
        inputs = images.clone()
        for k in range(1, 4):
            sel = labels == k
            inputs[sel] = torch.rot90(images[sel], k, dims=(2, 3))
        return inputs, labels

    def _square_batch(self, images: torch.Tensor) -> torch.Tensor:
        images = check_image_batch(images, self._name())
        if images.shape[-1] != images.shape[-2]:
            raise ConfigError(f"objective '{self._name()}' needs square images, got {tuple(images.shape[-2:])}")
        return images

    def extra_repr(self) -> str:
        return f"rotations={self.rotations}"

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        inputs, labels = self.pretext_targets(images)
        with eval_mode(self):
            return _score_value(self._logits(backbone, inputs), labels, self.score_metric)


# -- jigsaw permutations ---------------------------------------------------------------------------
_CRITERIA = ("mean", "min")


@functools.lru_cache(maxsize=8)
def _all_permutations(n: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


@functools.lru_cache(maxsize=16)
def _hamming_cached(n: int, k: int, seed: int, criterion: str) -> np.ndarray:
    perms = _all_permutations(n)
    total = len(perms)
    if k >= total:
        return perms.copy()
    cols = np.ascontiguousarray(perms.T)  # one contiguous row per tile position: fast column compares
    taken = -(1 << 30)  # chosen permutations drop out of every later argmax

    def distances(j: int) -> np.ndarray:
        d = np.zeros(total, dtype=np.int32)
        for pos in range(n):
            d += cols[pos] != cols[pos, j]
        return d

    rng = np.random.default_rng(seed)
    j = int(rng.integers(total))
    chosen = [j]
    acc = distances(j)
    acc[j] = taken
    for _ in range(1, k):
        j = int(np.argmax(acc))  # first index among ties
        chosen.append(j)
        d = distances(j)
        acc = acc + d if criterion == "mean" else np.minimum(acc, d)
        acc[chosen] = taken
    return perms[chosen].copy()


def hamming_permutations(n_tiles: int, k: int, *, seed: int = 0, criterion: str = "mean") -> np.ndarray:
    """A maximal-Hamming-distance set of ``k`` permutations of ``n_tiles`` tiles, ``[k, n_tiles]`` int.

    Greedy construction of Noroozi & Favaro (2016, Algorithm 1): start from a permutation drawn with
    ``seed``, then repeatedly add the remaining permutation whose Hamming distance to the chosen set is
    largest - summed over the set (``criterion="mean"``, their algorithm) or its minimum
    (``criterion="min"``, farthest-point greedy, which maximises the set's minimum distance step by
    step). Ties go to the first permutation in lexicographic order. ``k >= n_tiles!`` returns all
    permutations in lexicographic order (2x2 tiles: all 24).
    """
    if n_tiles < 2:
        raise ConfigError(f"jigsaw: need at least 2 tiles, got {n_tiles}")
    if criterion not in _CRITERIA:
        raise ConfigError(f"jigsaw: criterion must be one of {', '.join(_CRITERIA)}, got '{criterion}'")
    total = math.factorial(n_tiles)
    if k < 2 or k > total:
        raise ConfigError(f"jigsaw: num_permutations must be in 2..{total} for {n_tiles} tiles, got {k}")
    return _hamming_cached(int(n_tiles), int(k), int(seed), criterion).copy()


def min_hamming_distance(perms: np.ndarray) -> int:
    """The minimum pairwise Hamming distance of a permutation set."""
    p = np.asarray(perms)
    d = (p[:, None, :] != p[None, :, :]).sum(-1)
    np.fill_diagonal(d, p.shape[1] + 1)
    return int(d.min())


class Jigsaw(_PretextBase):
    """UnNAS jigsaw (Noroozi & Favaro): cut the image into ``grid x grid`` tiles, shuffle them with one of
    ``K`` preset permutations, classify which.

    :param grid: tiles per side; default 2 for images under 64 pixels (all 24 permutations, UnNAS on
        CIFAR), else 3.
    :param num_permutations: ``K``; default all 24 for 2x2 and 1000 for 3x3 (a maximal-Hamming set).
    :param criterion: greedy criterion of the permutation set, ``mean`` (Noroozi & Favaro) or ``min``.
    :param mode: ``tiles`` - each tile (a random crop of ``tile_frac`` of its cell, leaving a gap, and
        normalised by its own mean/std) goes through the backbone separately and the pooled features are
        concatenated in slot order (the context-free network used by UnNAS); ``image`` - the cells are
        shuffled inside the full image, which keeps the input size (for backbones fixed to one input
        size, such as ViTs); ``auto`` (default) - ``image`` for ViT-like pyramids (constant reduction),
        else ``tiles``.
    :param hidden: width of the per-slot layer of the head (default: last-stage channels, at most 256).
    :param seed: seeds the permutation set and the fixed draws of ``score``/``pretext_targets``.
    :param score_metric: ``loss`` (negative cross-entropy) or ``accuracy``.
    """

    requires_labels: ClassVar[bool] = False

    def __init__(
        self,
        *,
        grid: int | None = None,
        num_permutations: int | None = None,
        criterion: str = "mean",
        mode: str = "auto",
        tile_frac: float = 0.76,
        normalize_tiles: bool = True,
        hidden: int | None = None,
        seed: int = 0,
        score_metric: str = "loss",
    ):
        super().__init__(score_metric)
        if grid is not None and int(grid) < 2:
            raise ConfigError(f"objective '{self._name()}': grid must be >= 2, got {grid}")
        if mode not in ("auto", "tiles", "image"):
            raise ConfigError(f"objective '{self._name()}': mode must be auto, tiles or image, got '{mode}'")
        if not 0.0 < float(tile_frac) <= 1.0:
            raise ConfigError(f"objective '{self._name()}': tile_frac must be in (0, 1], got {tile_frac}")
        if criterion not in _CRITERIA:
            raise ConfigError(f"objective '{self._name()}': criterion must be one of {', '.join(_CRITERIA)}")
        self.grid_cfg = grid
        self.num_permutations_cfg = num_permutations
        self.criterion = criterion
        self.mode_cfg = mode
        self.tile_frac = float(tile_frac)
        self.normalize_tiles = bool(normalize_tiles)
        self.hidden = hidden
        self.seed = int(seed)

    def build_heads(self, feature_info: FeatureInfo) -> None:
        g = int(self.grid_cfg or (2 if self.img_size < 64 else 3))
        n = g * g
        k = self.num_permutations_cfg
        if k is None:
            k = math.factorial(n) if n <= 4 else 1000
        k = int(k)
        if self.img_size // g < 1:
            raise ConfigError(f"objective '{self._name()}': {self.img_size}px images cannot hold {g}x{g} tiles")
        perms = hamming_permutations(n, k, seed=self.seed, criterion=self.criterion)
        self.grid = g
        self.register_buffer("permutations", torch.as_tensor(perms, dtype=torch.long), persistent=False)
        self.min_hamming = min_hamming_distance(perms)
        reds = feature_info.reduction()
        self.mode = self.mode_cfg if self.mode_cfg != "auto" else ("image" if len(set(reds)) == 1 else "tiles")
        c = feature_info.channels()[-1]
        h = int(self.hidden or min(c, 256))
        self.slot = nn.Sequential(nn.Linear(c, h), nn.ReLU(inplace=True))
        self.head = nn.Linear(n * h, k)

    @property
    def num_pretext_classes(self) -> int:
        return int(self.permutations.shape[0])

    # -- shuffling ---------------------------------------------------------------------------------
    def _draw(self, b: int, device: torch.device, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Permutation indices ``[B]`` and tile offsets ``[B, n, 2]`` (uniform in [0, 1))."""
        gdev = generator.device if generator is not None else device
        labels = torch.randint(self.num_pretext_classes, (b,), generator=generator, device=gdev)
        offsets = torch.rand(b, self.grid * self.grid, 2, generator=generator, device=gdev)
        return labels.to(device), offsets.to(device)

    def _cells(self, images: torch.Tensor, size: int, offsets: torch.Tensor | None) -> torch.Tensor:
        """``[B, n, C, size, size]`` crops, one per cell in raster order (at a random offset inside the cell
        when ``offsets`` is given, else the cell's top-left corner)."""
        b = images.shape[0]
        g = self.grid
        cell = images.shape[-1] // g
        dev = images.device
        origin = torch.arange(g, device=dev) * cell
        oy = origin.repeat_interleave(g).view(1, -1).expand(b, -1)
        ox = origin.repeat(g).view(1, -1).expand(b, -1)
        if offsets is not None and cell > size:
            slack = cell - size + 1
            oy = oy + (offsets[..., 0] * slack).long().clamp_max(slack - 1)
            ox = ox + (offsets[..., 1] * slack).long().clamp_max(slack - 1)
        ar = torch.arange(size, device=dev)
        rows = (oy.unsqueeze(-1) + ar).unsqueeze(-1)  # [B, n, s, 1]
        cols = (ox.unsqueeze(-1) + ar).unsqueeze(-2)  # [B, n, 1, s]
        bidx = torch.arange(b, device=dev).view(b, 1, 1, 1)
        tiles = images[bidx, :, rows, cols]  # [B, n, s, s, C]
        return tiles.permute(0, 1, 4, 2, 3)

    def _to_slots(self, tiles: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Place tile ``k`` in slot ``perm[k]`` (UnNAS): slot ``s`` holds tile ``inverse(perm)[s]``."""
        perm = self.permutations.to(labels.device)[labels]  # [B, n]
        inv = perm.argsort(dim=1)
        idx = inv.view(*inv.shape, 1, 1, 1).expand(-1, -1, *tiles.shape[2:])
        return tiles.gather(1, idx)

    def shuffle_images(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Full-size images with their ``grid x grid`` cells permuted by ``permutations[labels]`` (pixels
        beyond ``grid * (H // grid)`` stay in place)."""
        g = self.grid
        cell = images.shape[-1] // g
        slots = self._to_slots(self._cells(images, cell, None), labels)  # [B, n, C, c, c]
        b, _, ch = slots.shape[:3]
        grid_img = slots.view(b, g, g, ch, cell, cell).permute(0, 3, 1, 4, 2, 5).reshape(b, ch, g * cell, g * cell)
        out = images.clone()
        out[:, :, : g * cell, : g * cell] = grid_img
        return out

    def pretext_targets(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shuffled full-size images in [0, 1], permutation index)`` with permutations drawn from the
        fixed ``seed`` (the same on every call), whatever the training ``mode``."""
        images = check_image_batch(images, self._name())
        labels, _ = self._draw(images.shape[0], images.device, fixed_generator(self.seed))
        return self.shuffle_images(images, labels), labels

    # -- forward -----------------------------------------------------------------------------------
    def _logits(self, backbone: nn.Module, images: torch.Tensor, labels: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        b, n = images.shape[0], self.grid * self.grid
        if self.mode == "tiles":
            cell = images.shape[-1] // self.grid
            size = max(1, int(cell * self.tile_frac))
            slots = self._to_slots(self._cells(images, size, offsets), labels)
            x = slots.reshape(b * n, *slots.shape[2:])
            if self.normalize_tiles:
                mean = x.mean(dim=(1, 2, 3), keepdim=True)
                std = x.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
                x = (x - mean) / (std + 1e-3)
            else:
                x = normalize(x)
            feat = forward_features(backbone, x)[-1].mean(dim=(2, 3)).view(b, n, -1)
        else:
            x = normalize(self.shuffle_images(images, labels))
            f = forward_features(backbone, x)[-1]
            feat = F.adaptive_avg_pool2d(f, (self.grid, self.grid)).flatten(2).transpose(1, 2)  # [B, n, C]
        return self.head(self.slot(feat).flatten(1))

    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        images = check_image_batch(images, self._name())
        labels, offsets = self._draw(images.shape[0], images.device, None)
        return F.cross_entropy(self._logits(backbone, images, labels, offsets).float(), labels)

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        images = check_image_batch(images, self._name())
        labels, offsets = self._draw(images.shape[0], images.device, fixed_generator(self.seed))
        with eval_mode(self):
            return _score_value(self._logits(backbone, images, labels, offsets), labels, self.score_metric)

    def extra_repr(self) -> str:
        if not self.is_setup:
            return f"grid={self.grid_cfg or 'auto'}, mode={self.mode_cfg}"
        return f"grid={self.grid}, permutations={self.num_pretext_classes}, min_hamming={self.min_hamming}, mode={self.mode}"
