"""The labelled baselines: ``supervised`` (cross-entropy, the usual NAS objective) and ``random_labels``
(RLNAS: every image gets a fixed random label). Both declare ``requires_labels``, so a label-free search
that selects them fails before any compute (``nas_core.check_compatible``)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import ConfigError, FeatureInfo, NasError, Objective, forward_features

from ._common import check_image_batch, content_key, eval_mode, hash_uniform, normalize
from ._pretext import SCORE_METRICS

__all__ = ["Supervised", "RandomLabels"]


class Supervised(Objective):
    """Cross-entropy of a linear classifier on the globally pooled last stage.

    :param num_classes: classes of the labelled data.
    :param label_smoothing: passed to ``cross_entropy``.
    :param label_memory: how many (image, label) pairs seen by :meth:`loss` are remembered (keyed by
        image content) so that ``score(backbone, images)`` can rank on already-labelled images without
        ``targets``; 0 disables it. ``score(..., targets=labels)`` always works.
    :param score_metric: ``loss`` (negative cross-entropy, default) or ``accuracy``.
    """

    requires_labels: ClassVar[bool] = True

    def __init__(
        self,
        *,
        num_classes: int = 10,
        label_smoothing: float = 0.0,
        label_memory: int = 65536,
        score_metric: str = "loss",
    ):
        super().__init__()
        name = self._name()
        if int(num_classes) < 2:
            raise ConfigError(f"objective '{name}': num_classes must be >= 2, got {num_classes}")
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ConfigError(f"objective '{name}': label_smoothing must be in [0, 1), got {label_smoothing}")
        if int(label_memory) < 0:
            raise ConfigError(f"objective '{name}': label_memory must be >= 0, got {label_memory}")
        if score_metric not in SCORE_METRICS:
            raise ConfigError(f"objective '{name}': score_metric must be one of {', '.join(SCORE_METRICS)}")
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)
        self.label_memory = int(label_memory)
        self.score_metric = score_metric
        self._mem_pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._mem_keys: torch.Tensor | None = None
        self._mem_labels: torch.Tensor | None = None
        self._checked_cuda = False

    def _name(self) -> str:
        return self.registered_name or type(self).__name__.lower()

    def build_heads(self, feature_info: FeatureInfo) -> None:
        self.head = nn.Linear(feature_info.channels()[-1], self.num_classes)

    # -- labels ------------------------------------------------------------------------------------
    def _validate(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not isinstance(targets, torch.Tensor):
            targets = torch.as_tensor(targets)
        if targets.dim() != 1 or targets.shape[0] != images.shape[0] or targets.is_floating_point():
            raise NasError(
                f"objective '{self._name()}': targets must be integer class labels of shape [{images.shape[0]}], got "
                f"{targets.dtype} {tuple(targets.shape)}"
            )
        targets = targets.to(images.device, torch.long)
        if targets.device.type == "cpu" or not self._checked_cuda:  # one sync on accelerators
            self._checked_cuda = targets.device.type != "cpu"
            lo, hi = int(targets.min()), int(targets.max())
            if lo < 0 or hi >= self.num_classes:
                raise NasError(
                    f"objective '{self._name()}' has num_classes={self.num_classes} but got label {hi if hi >= self.num_classes else lo}; "
                    f"create it with num_classes=<classes in your data>"
                )
        return targets

    def _remember(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if self.label_memory <= 0:
            return
        self._mem_pending.append((content_key(images), labels.detach()))
        if sum(k.numel() for k, _ in self._mem_pending) > self.label_memory:
            self._flush_memory()

    def _flush_memory(self) -> None:
        if not self._mem_pending:
            return
        keys = [k for k, _ in self._mem_pending]
        labs = [v for _, v in self._mem_pending]
        if self._mem_keys is not None:
            keys.insert(0, self._mem_keys.to(keys[0].device))
            labs.insert(0, self._mem_labels.to(labs[0].device))  # type: ignore[union-attr]
        self._mem_keys = torch.cat(keys)[-self.label_memory :]
        self._mem_labels = torch.cat(labs)[-self.label_memory :]
        self._mem_pending = []

    def recall_labels(self, images: torch.Tensor) -> torch.Tensor:
        """Labels remembered for ``images`` (seen by :meth:`loss` with targets); raises when some are unknown."""
        self._flush_memory()
        if self._mem_keys is None:
            raise NasError(
                f"objective '{self._name()}': score() needs labels: pass score(backbone, images, targets=labels) "
                f"(no labelled images have been seen by loss() yet)"
            )
        keys = content_key(images).to(self._mem_keys.device)
        order = torch.sort(self._mem_keys, stable=True)
        pos = torch.searchsorted(order.values, keys, right=True) - 1  # last (latest) equal key
        pos = pos.clamp_min(0)
        found = order.values[pos] == keys
        if not bool(found.all()):
            missing = int((~found).sum())
            raise NasError(
                f"objective '{self._name()}': {missing} of {keys.numel()} images have no known label; pass "
                f"score(backbone, images, targets=labels)"
            )
        return self._mem_labels[order.indices[pos]].to(images.device)  # type: ignore[index]

    def labels_for(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The class indices the classifier is trained on (the true labels here)."""
        return targets

    # -- objective ---------------------------------------------------------------------------------
    def logits(self, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
        feat = forward_features(backbone, normalize(images))[-1]
        return self.head(feat.mean(dim=(2, 3)))

    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        images = check_image_batch(images, self._name())
        assert targets is not None  # the base class guard raises a clear error first
        targets = self._validate(images, targets)
        self._remember(images, targets)
        labels = self.labels_for(images, targets)
        return F.cross_entropy(self.logits(backbone, images).float(), labels, label_smoothing=self.label_smoothing)

    def _score_labels(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        if targets is not None:
            return self.labels_for(images, self._validate(images, targets))
        return self.labels_for(images, self.recall_labels(images))

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> float:
        """Negative cross-entropy (or accuracy) on ``targets``, or on the labels remembered for these images."""
        images = check_image_batch(images, self._name())
        labels = self._score_labels(images, targets)
        with eval_mode(self):
            logits = self.logits(backbone, images).float()
        if self.score_metric == "accuracy":
            return float((logits.argmax(-1) == labels).float().mean())
        return -float(F.cross_entropy(logits, labels))


class RandomLabels(Supervised):
    """RLNAS: train on labels drawn uniformly at random once per image and fixed for the whole run.

    A label is tied to the image itself, not to a dataset index: it is a seeded hash of the image
    content (8-bit quantised pixels, a universal hash modulo 2^61-1, see ``nas_objectives.content_key``),
    so the same image gets the same label in every epoch, batch order, process and device, and no
    index has to travel with the data. Consequence: an augmented view (crop, flip) is a different
    image with its own label, so feed un-augmented images (RLNAS trains the supernet on fixed images).

    :param corrupt: fraction of images whose true label is replaced by the random one (1.0 = RLNAS,
        all random; below 1 gives Zhang et al.'s partially corrupted labels; the choice per image is
        hashed too).
    :param seed: seed of the hash (a different seed gives a different random labelling).

    ``requires_labels`` stays true like the supervised baseline it controls: the labelled data fixes
    the label space, and with ``corrupt < 1`` the kept labels are the true ones. With ``corrupt=1`` the
    targets are only validated, and ``score`` needs no targets.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        corrupt: float = 1.0,
        seed: int = 0,
        label_smoothing: float = 0.0,
        label_memory: int = 65536,
        score_metric: str = "loss",
    ):
        super().__init__(
            num_classes=num_classes, label_smoothing=label_smoothing, label_memory=label_memory, score_metric=score_metric
        )
        if not 0.0 <= float(corrupt) <= 1.0:
            raise ConfigError(f"objective '{self._name()}': corrupt must be in [0, 1], got {corrupt}")
        self.corrupt = float(corrupt)
        self.seed = int(seed)

    def random_labels(self, images: torch.Tensor) -> torch.Tensor:
        """The fixed random label of every image, ``[B]`` in ``0..num_classes-1``."""
        key = content_key(images, self.seed)
        return hash_uniform(key, 2 * self.seed + 1) % self.num_classes

    def corrupted(self, images: torch.Tensor) -> torch.Tensor:
        """Which images get a random label (all of them when ``corrupt == 1``)."""
        if self.corrupt >= 1.0:
            return torch.ones(images.shape[0], dtype=torch.bool, device=images.device)
        key = content_key(images, self.seed)
        u = hash_uniform(key, 2 * self.seed + 2).float() / float((1 << 31) - 1)
        return u < self.corrupt

    def labels_for(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rand = self.random_labels(images)
        if self.corrupt >= 1.0:
            return rand
        return torch.where(self.corrupted(images), rand, targets)

    def _score_labels(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        if targets is None and self.corrupt >= 1.0:
            return self.random_labels(images)
        return super()._score_labels(images, targets)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, corrupt={self.corrupt}, seed={self.seed}"
