"""Unlabeled image data: the embedded default, image folders, torchvision datasets and tensors.

Every dataset yields float RGB tensors ``[3, H, W]`` in ``[0, 1]`` (objectives normalise as they
need), or ``(image, label)`` pairs when created with ``labels=True`` for the evaluation phase.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from ._errors import ConfigError, DataError
from ._io import is_directory

__all__ = [
    "ImageData",
    "TensorImages",
    "EmbeddedDigits",
    "EmbeddedPhotos",
    "ImageFolderData",
    "TorchvisionImages",
    "load_data",
    "split_dataset",
    "make_loader",
    "GlobalBatchSampler",
    "IMAGE_EXTENSIONS",
    "EMBEDDED_DATASETS",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")


class ImageData(Dataset):
    """Base class: ``name``, ``img_size``, ``in_chans`` (3), ``has_labels``, ``num_classes``."""

    name: str = "images"
    img_size: int = 32
    in_chans: int = 3
    num_classes: int | None = None
    return_labels: bool = False

    @property
    def has_labels(self) -> bool:
        return self.return_labels

    def describe(self) -> str:
        lab = f", {self.num_classes} classes" if self.return_labels and self.num_classes else ", unlabeled"
        return f"{self.name}: {len(self)} images, {self.in_chans}x{self.img_size}x{self.img_size}{lab}"

    def __len__(self) -> int:  # pragma: no cover - subclasses implement
        raise TypeError(f"{type(self).__name__} does not define __len__")


def _to_rgb_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, C, h, w]`` float -> ``[N, 3, size, size]`` (bilinear, antialiased when shrinking)."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    elif images.shape[1] == 4:
        images = images[:, :3]
    elif images.shape[1] != 3:
        raise DataError(f"images must have 1, 3 or 4 channels, got {images.shape[1]}")
    if images.shape[-2:] != (size, size):
        shrink = images.shape[-1] > size or images.shape[-2] > size
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return images.clamp(0.0, 1.0).contiguous()


class TensorImages(ImageData):
    """Images held in memory as a tensor ``[N, C, H, W]`` (values in [0, 1] or 0-255 uint8)."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | Sequence[int] | None = None,
        *,
        img_size: int | None = None,
        return_labels: bool = False,
        name: str = "tensor",
        num_classes: int | None = None,
    ):
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise DataError(
                f"tensor data must be a [N, C, H, W] tensor, got "
                f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}"
            )
        if images.shape[0] == 0:
            raise DataError("tensor data holds no images")
        x = images.float()
        if images.dtype == torch.uint8 or x.max() > 1.5:
            x = x / 255.0
        if not torch.isfinite(x).all():
            raise DataError("tensor data contains NaN or infinite values")
        size = int(img_size or images.shape[-1])
        self.images = _to_rgb_size(x, size)
        self.img_size = size
        self.name = name
        if labels is not None:
            lab = torch.as_tensor(labels, dtype=torch.long)
            if lab.shape != (images.shape[0],):
                raise DataError(f"labels must have shape [{images.shape[0]}], got {tuple(lab.shape)}")
            self.labels: torch.Tensor | None = lab
            self.num_classes = num_classes or int(lab.max().item()) + 1
        else:
            self.labels = None
        if return_labels and self.labels is None:
            raise DataError(f"{name}: labels were requested but this data has none")
        self.return_labels = return_labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> Any:
        if self.return_labels:
            assert self.labels is not None
            return self.images[i], self.labels[i]
        return self.images[i]

    def with_labels(self, return_labels: bool = True) -> TensorImages:
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        if return_labels and self.labels is None:
            raise DataError(f"{self.name}: labels were requested but this data has none")
        out.return_labels = return_labels
        return out


_EMBEDDED_CACHE: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor | None]] = {}


class EmbeddedDigits(TensorImages):
    """The default data, no download: scikit-learn's 1797 handwritten digits (8x8, 16 grey levels),
    resized to ``img_size`` and replicated to RGB. Labels (0-9) are kept aside for evaluation."""

    def __init__(self, *, img_size: int = 32, return_labels: bool = False):
        key = ("digits", img_size)
        if key not in _EMBEDDED_CACHE:
            from sklearn.datasets import load_digits

            d = load_digits()
            raw = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
            _EMBEDDED_CACHE[key] = (_to_rgb_size(raw, img_size), torch.from_numpy(d.target.astype(np.int64)))
        images, labels = _EMBEDDED_CACHE[key]
        super().__init__(images, labels, img_size=img_size, return_labels=return_labels, name="digits", num_classes=10)


class EmbeddedPhotos(TensorImages):
    """Colour images, no download: ``count`` seeded crops of scikit-learn's two sample photographs
    (china.jpg, flower.jpg), resized to ``img_size``. Unlabeled (use it for colour objectives)."""

    def __init__(self, *, img_size: int = 32, count: int = 2048, crop: int = 96, seed: int = 0):
        key = (f"photos-{count}-{crop}-{seed}", img_size)
        if key not in _EMBEDDED_CACHE:
            from sklearn.datasets import load_sample_images

            photos = [torch.from_numpy(im.astype(np.float32) / 255.0).permute(2, 0, 1) for im in load_sample_images().images]
            g = np.random.default_rng(seed)
            crops = []
            for i in range(count):
                p = photos[i % len(photos)]
                _, h, w = p.shape
                y, x = int(g.integers(0, h - crop)), int(g.integers(0, w - crop))
                c = p[:, y : y + crop, x : x + crop]
                if g.random() < 0.5:
                    c = c.flip(-1)
                crops.append(c)
            _EMBEDDED_CACHE[key] = (_to_rgb_size(torch.stack(crops), img_size), None)
        images, _ = _EMBEDDED_CACHE[key]
        super().__init__(images, None, img_size=img_size, name="photos")


EMBEDDED_DATASETS: dict[str, Callable[..., ImageData]] = {
    "digits": EmbeddedDigits,
    "photos": EmbeddedPhotos,
}


def _unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be decoded as an image (``None`` when it can)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:  # verify() leaves the file unusable; decode for real
            im.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means corrupt
        return f"{type(exc).__name__}: {exc}"[:160]
    return None


class ImageFolderData(ImageData):
    """Every image file under ``root`` (recursive, any common format), labels ignored.

    With ``return_labels=True`` the first-level sub-directory names are the classes (torchvision's
    ImageFolder layout). Images are converted to RGB, resized (shorter side) and centre-cropped.
    Every file is decoded once when the folder is opened, so a corrupt one is found before any compute: it raises
    :class:`DataError` naming the unreadable files, unless ``skip_corrupt=True``; then they are skipped, listed in
    ``self.skipped`` and reported in a warning with their count and names.
    """

    def __init__(self, root: str | Path, *, img_size: int = 32, skip_corrupt: bool = False, return_labels: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"image folder '{root}' does not exist or is not a directory")
        files = sorted(
            p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if not files:
            raise DataError(
                f"no images found under '{root}' (looked recursively for {', '.join(IMAGE_EXTENSIONS)})"
            )
        bad = [(p, problem) for p in files if (problem := _unreadable(p)) is not None]
        self.skipped: list[Path] = [p for p, _ in bad]
        if bad:
            shown = "; ".join(f"{p.relative_to(self.root)} ({problem})" for p, problem in bad[:5])
            more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
            if len(bad) == len(files):
                raise DataError(f"all {len(files)} images under '{root}' are unreadable: {shown}{more}")
            if not skip_corrupt:
                raise DataError(
                    f"{len(bad)} of {len(files)} images under '{root}' cannot be read: {shown}{more}. Remove or "
                    f"replace them, or skip them with --skip-corrupt (skip_corrupt=True)"
                )
            import warnings

            warnings.warn(
                f"skipped {len(bad)} unreadable image(s) of {len(files)} under '{root}': "
                + ", ".join(str(p.relative_to(self.root)) for p, _ in bad[:20]) + (" ..." if len(bad) > 20 else ""),
                RuntimeWarning,
                stacklevel=3,
            )
            skipped = set(self.skipped)
            files = [p for p in files if p not in skipped]
        self.files = files
        self.img_size = img_size
        self.name = f"folder:{self.root}"
        self.skip_corrupt = skip_corrupt
        classes = sorted({p.relative_to(self.root).parts[0] for p in files if len(p.relative_to(self.root).parts) > 1})
        self.classes = classes
        self.class_to_idx = {c: i for i, c in enumerate(classes)}
        if return_labels and not classes:
            raise DataError(
                f"labels were requested but '{root}' has no class sub-directories (expected root/<class>/<image>)"
            )
        self.num_classes = len(classes) or None
        self.return_labels = return_labels

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: Path) -> torch.Tensor:
        from PIL import Image

        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                s = self.img_size / min(w, h)
                nw, nh = max(self.img_size, round(w * s)), max(self.img_size, round(h * s))
                im = im.resize((nw, nh), Image.BICUBIC)
                left, top = (nw - self.img_size) // 2, (nh - self.img_size) // 2
                im = im.crop((left, top, left + self.img_size, top + self.img_size))
                arr = np.asarray(im, dtype=np.float32) / 255.0
        except Exception as exc:  # noqa: BLE001
            raise DataError(
                f"cannot read image '{path}': {type(exc).__name__}: {exc}. Remove or replace the file, or pass "
                f"skip_corrupt=True (--skip-corrupt) to skip unreadable files and count them."
            ) from exc
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

    def __getitem__(self, i: int) -> Any:
        path = self.files[i]
        img = self._load(path)
        if self.return_labels:
            return img, self.class_to_idx[path.relative_to(self.root).parts[0]]
        return img


_TORCHVISION = {
    "cifar10": ("CIFAR10", 10),
    "cifar100": ("CIFAR100", 100),
    "svhn": ("SVHN", 10),
    "mnist": ("MNIST", 10),
    "fashionmnist": ("FashionMNIST", 10),
    "stl10": ("STL10", 10),
}


class TorchvisionImages(ImageData):
    """A torchvision dataset with its labels dropped (kept for ``return_labels=True``)."""

    def __init__(
        self,
        name: str,
        root: str | Path | None = None,
        *,
        img_size: int = 32,
        train: bool = True,
        download: bool = False,
        return_labels: bool = False,
    ):
        key = name.lower().replace("-", "").replace("_", "")
        if key not in _TORCHVISION:
            raise DataError(f"unknown torchvision dataset '{name}' (known: {', '.join(_TORCHVISION)})")
        try:
            import torchvision
        except ImportError as exc:
            raise DataError(f"dataset '{name}' needs torchvision: pip install 'nas-core[torchvision]'") from exc
        cls_name, n_classes = _TORCHVISION[key]
        root = Path(root or os.environ.get("NAS_DATA_ROOT", Path.home() / ".cache" / "nas" / "data"))
        cls = getattr(torchvision.datasets, cls_name)
        try:
            if key in ("svhn", "stl10"):
                split = ("train" if return_labels else "unlabeled") if key == "stl10" and train else ("train" if train else "test")
                self.ds = cls(str(root), split=split, download=download)
            else:
                self.ds = cls(str(root), train=train, download=download)
        except RuntimeError as exc:
            raise DataError(
                f"dataset '{name}' is not under '{root}' ({exc}). Download it once with download=True "
                f"(--download) on a machine with internet, or point root/NAS_DATA_ROOT at a copy."
            ) from exc
        self.name = key
        self.img_size = img_size
        self.num_classes = n_classes
        self.return_labels = return_labels

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Any:
        img, label = self.ds[i]
        arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        t = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
        t = _to_rgb_size(t, self.img_size)[0]
        return (t, int(label)) if self.return_labels else t


class _Unlabeled(ImageData):
    """Wrap any dataset whose items are images or (image, label, ...) tuples; labels are dropped."""

    def __init__(self, ds: Dataset, *, img_size: int | None = None, return_labels: bool = False):
        self.ds = ds
        first = ds[0]
        img = first[0] if isinstance(first, (tuple, list)) else first
        if not isinstance(img, torch.Tensor) or img.dim() != 3:
            raise DataError(
                f"dataset items must be [C, H, W] tensors (or tuples starting with one), got {type(img).__name__}"
            )
        if return_labels and not isinstance(first, (tuple, list)):
            raise DataError("labels were requested but this dataset yields images only")
        self.img_size = int(img_size or img.shape[-1])
        self.name = type(ds).__name__
        self.return_labels = return_labels

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Any:
        item = self.ds[i]
        img = item[0] if isinstance(item, (tuple, list)) else item
        img = _to_rgb_size(img.float().unsqueeze(0), self.img_size)[0]
        return (img, int(item[1])) if self.return_labels else img


def load_data(
    spec: Any = None,
    *,
    img_size: int = 32,
    labels: bool = False,
    skip_corrupt: bool = False,
    root: str | Path | None = None,
    train: bool = True,
    download: bool = False,
    limit: int | None = None,
) -> ImageData:
    """Open image data from a name, a path, a tensor or a dataset.

    ``None``/``"embedded"``/``"digits"``: the embedded digits (default, no download);
    ``"photos"``: embedded colour crops; ``"cifar10"``, ``"svhn"``, ... (or ``"torchvision:cifar10"``):
    torchvision datasets under ``root``; a directory: an image folder; a ``[N, C, H, W]`` tensor or
    ``(images, labels)``; any ``Dataset``. ``labels=True`` returns ``(image, label)`` pairs for the
    evaluation phase. ``limit`` keeps the first ``limit`` items (quick runs).
    """
    if img_size < 8:
        raise ConfigError(f"img_size: {img_size} is too small (at least 8)")
    data: ImageData
    if isinstance(spec, ImageData):
        data = spec
        if labels and not data.has_labels:
            if isinstance(data, TensorImages):
                data = data.with_labels(True)
            else:
                raise DataError(f"{data.name}: labels were requested but the dataset was opened without them")
    elif spec is None or (isinstance(spec, str) and spec.lower() in ("embedded", "default", "digits")):
        data = EmbeddedDigits(img_size=img_size, return_labels=labels)
    elif isinstance(spec, str) and spec.lower() == "photos":
        if labels:
            raise DataError("the embedded 'photos' data has no labels; use 'digits' for a labelled evaluation")
        data = EmbeddedPhotos(img_size=img_size)
    elif isinstance(spec, torch.Tensor):
        data = TensorImages(spec, img_size=img_size, return_labels=False)
        if labels:
            raise DataError("labels were requested but a bare tensor has none; pass (images, labels)")
    elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], torch.Tensor):
        data = TensorImages(spec[0], spec[1], img_size=img_size, return_labels=labels)
    elif isinstance(spec, (str, Path)):
        text = str(spec)
        name = text.split(":", 1)[1] if text.lower().startswith("torchvision:") else text
        if is_directory(text):
            data = ImageFolderData(Path(text).expanduser(), img_size=img_size, skip_corrupt=skip_corrupt, return_labels=labels)
        elif name.lower().replace("-", "").replace("_", "") in _TORCHVISION:
            data = TorchvisionImages(name, root, img_size=img_size, train=train, download=download, return_labels=labels)
        else:
            raise DataError(
                f"data '{text}' is neither a directory nor a known dataset. Use a folder of images, "
                f"'digits' (embedded, default), 'photos' (embedded colour crops) or one of: {', '.join(_TORCHVISION)}"
            )
    elif isinstance(spec, Dataset):
        data = _Unlabeled(spec, img_size=img_size, return_labels=labels)
    else:
        raise DataError(f"cannot open data from {type(spec).__name__}; pass a path, a name, a tensor or a Dataset")
    if limit is not None:
        if limit <= 0:
            raise ConfigError(f"limit: must be positive, got {limit}")
        data = _Subset(data, list(range(min(limit, len(data)))))
    return data


class _Subset(ImageData):
    def __init__(self, base: ImageData, indices: Sequence[int]):
        self.base = base
        self.indices = list(indices)
        self.name = base.name
        self.img_size = base.img_size
        self.in_chans = base.in_chans
        self.num_classes = base.num_classes
        self.return_labels = base.return_labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.base[self.indices[i]]


def split_dataset(data: ImageData, val_fraction: float = 0.5, seed: int = 0) -> tuple[ImageData, ImageData]:
    """A deterministic (seeded) train/validation split; DARTS uses the halves for weights/alphas."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction: must be in (0, 1), got {val_fraction}")
    n = len(data)
    if n < 2:
        raise DataError(f"{data.name}: {n} image(s) cannot be split into train and validation")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(n * val_fraction))))
    return _Subset(data, perm[n_val:].tolist()), _Subset(data, perm[:n_val].tolist())


class GlobalBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` indices per rank, cut from one global permutation all ranks share.

    Global batch ``k`` is ``perm[k*B*W : (k+1)*B*W]``; rank ``r`` takes the ``r``-th contiguous slice,
    so a W-process run sees exactly the images of a single-process run with batch ``B*W``.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
        generator: torch.Generator | None = None,
    ):
        if batch_size <= 0:
            raise ConfigError(f"batch_size: must be positive, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.generator = generator
        global_bs = batch_size * world_size
        if drop_last and n < global_bs:
            raise DataError(
                f"{n} images cannot fill one batch of {global_bs} ({batch_size} x {world_size} ranks); lower "
                f"batch_size or use more data"
            )

    def __iter__(self) -> Iterator[list[int]]:
        perm = torch.randperm(self.n, generator=self.generator).tolist() if self.shuffle else list(range(self.n))
        gbs = self.batch_size * self.world_size
        n_batches = self.n // gbs if self.drop_last else math.ceil(self.n / gbs)
        for k in range(n_batches):
            chunk = perm[k * gbs : (k + 1) * gbs]
            part = chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            if part:
                yield part

    def __len__(self) -> int:
        gbs = self.batch_size * self.world_size
        return self.n // gbs if self.drop_last else math.ceil(self.n / gbs)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = True,
    context: Any = None,
    stream: str = "data",
    num_workers: int | None = None,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A DataLoader suited to the device.

    On CUDA: pinned memory and ``min(8, cpus // world_size - 1)`` persistent workers. On CPU:
    loading happens in the main process (workers only compete for the cores the model uses).
    Under torchrun each rank gets its slice of a shared global batch (:class:`GlobalBatchSampler`).
    Shuffling draws from the context's checkpointed ``stream`` generator, so resumed runs see the
    same batches.
    """
    device_type = context.device.type if context is not None else "cpu"
    rank = context.rank if context is not None else 0
    world = context.world_size if context is not None else 1
    if generator is None and context is not None:
        generator = context.torch_generator(stream)
    if num_workers is None:
        cpus = os.cpu_count() or 1
        num_workers = max(0, min(8, cpus // max(1, world) - 1)) if device_type == "cuda" else 0
    sampler = GlobalBatchSampler(
        len(dataset),  # type: ignore[arg-type]
        batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        rank=rank,
        world_size=world,
        generator=generator,
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        pin_memory=device_type == "cuda",
        persistent_workers=num_workers > 0,
    )
