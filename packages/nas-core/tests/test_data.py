"""Data: embedded default, image folders (recursive, formats, corrupt files), tensors, splits, loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nas_core import (
    ConfigError,
    DataError,
    EmbeddedDigits,
    GlobalBatchSampler,
    RunContext,
    load_data,
    make_loader,
    split_dataset,
)


def test_embedded_digits_are_real_images_with_labels_aside():
    d = load_data()
    assert isinstance(d, EmbeddedDigits) and len(d) == 1797 and not d.has_labels
    x = d[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.1
    assert torch.equal(x[0], x[1])  # grey digits replicated to RGB
    lab = load_data("digits", labels=True)
    img, y = lab[5]
    assert torch.equal(img, d[5]) and 0 <= int(y) <= 9 and lab.num_classes == 10
    assert sorted(set(int(lab.labels[i]) for i in range(len(lab)))) == list(range(10))
    small = load_data("digits", img_size=16, limit=10)
    assert len(small) == 10 and small[0].shape == (3, 16, 16)


def test_embedded_photos_have_colour():
    p = load_data("photos", img_size=16)
    x = torch.stack([p[i] for i in range(32)])
    assert x.shape == (32, 3, 16, 16)
    chroma = (x[:, 0] - x[:, 2]).abs().mean()
    assert float(chroma) > 0.02, "photos should not be grey"
    with pytest.raises(DataError, match="no labels"):
        load_data("photos", labels=True)


def _save(path, arr, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


def test_image_folder_is_recursive_and_reads_common_formats(tmp_path):
    rng = np.random.default_rng(0)
    rgb = lambda h, w: (rng.random((h, w, 3)) * 255).astype(np.uint8)  # noqa: E731
    _save(tmp_path / "cats" / "a.png", rgb(40, 50))
    _save(tmp_path / "cats" / "deep" / "b.jpg", rgb(32, 32))
    _save(tmp_path / "dogs" / "c.bmp", rgb(20, 64))
    _save(tmp_path / "dogs" / "d.gif", (rng.random((30, 30)) * 255).astype(np.uint8))
    _save(tmp_path / "dogs" / "e.webp", rgb(33, 35))
    (tmp_path / "notes.txt").write_text("not an image")
    d = load_data(tmp_path, img_size=16)
    assert len(d) == 5 and not d.has_labels
    for i in range(len(d)):
        x = d[i]
        assert x.shape == (3, 16, 16) and 0 <= float(x.min()) and float(x.max()) <= 1
    lab = load_data(str(tmp_path), img_size=16, labels=True)
    assert lab.classes == ["cats", "dogs"]
    assert sorted(int(lab[i][1]) for i in range(5)) == [0, 0, 1, 1, 1]


def test_corrupt_file_is_named_or_skipped_and_counted(tmp_path):
    _save(tmp_path / "ok.png", np.zeros((8, 8, 3), np.uint8))
    bad = tmp_path / "sub" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(DataError) as e:  # found when the folder is opened, before any compute
        load_data(tmp_path, img_size=8)
    assert "1 of 2 images" in str(e.value) and "sub/broken.jpg" in str(e.value) and "--skip-corrupt" in str(e.value)
    with pytest.warns(RuntimeWarning, match=r"skipped 1 unreadable image\(s\) of 2 .*sub/broken.jpg"):
        d2 = load_data(tmp_path, img_size=8, skip_corrupt=True)
    assert len(d2) == 1 and [p.name for p in d2.skipped] == ["broken.jpg"]
    bad.unlink()
    d3 = load_data(tmp_path, img_size=8)
    (tmp_path / "ok.png").write_bytes(b"garbage")  # a file that breaks after the folder was opened is still named
    with pytest.raises(DataError, match="ok.png.*skip_corrupt=True"):
        d3[0]
    with pytest.raises(DataError, match="all 1 images .* unreadable: ok.png"):
        load_data(tmp_path, img_size=8, skip_corrupt=True)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        load_data(tmp_path)
    with pytest.raises(DataError, match="neither a directory nor a known dataset"):
        load_data(str(tmp_path / "nope"))
    _save(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="no class sub-directories"):
        load_data(tmp_path, labels=True)


def test_tensor_data_scales_and_checks():
    u8 = torch.randint(0, 256, (6, 1, 10, 10), dtype=torch.uint8)
    d = load_data(u8, img_size=12)
    assert d[0].shape == (3, 12, 12) and float(d[0].max()) <= 1.0
    d2 = load_data((torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 1, 0])), img_size=8, labels=True)
    assert int(d2[2][1]) == 1
    with pytest.raises(DataError, match=r"\[N, C, H, W\]"):
        load_data(torch.rand(3, 8, 8))
    with pytest.raises(DataError, match="NaN"):
        load_data(torch.full((2, 3, 8, 8), float("nan")))
    with pytest.raises(ConfigError, match="too small"):
        load_data(img_size=4)


def test_torchvision_dataset_absent_says_how_to_get_it(tmp_path):
    pytest.importorskip("torchvision")
    with pytest.raises(DataError) as e:
        load_data("cifar10", root=tmp_path)
    assert "download=True" in str(e.value) and str(tmp_path) in str(e.value)


def test_split_is_deterministic_disjoint_and_seeded():
    d = load_data(limit=100)
    tr, va = split_dataset(d, 0.5, seed=3)
    tr2, va2 = split_dataset(d, 0.5, seed=3)
    _, va3 = split_dataset(d, 0.5, seed=4)
    assert tr.indices == tr2.indices and va.indices == va2.indices
    assert set(tr.indices).isdisjoint(va.indices) and len(tr) + len(va) == 100
    assert va.indices != va3.indices
    with pytest.raises(ConfigError):
        split_dataset(d, 1.5)


def test_global_batches_are_shared_across_ranks():
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    single = list(GlobalBatchSampler(40, 8, generator=g()))
    r0 = list(GlobalBatchSampler(40, 4, rank=0, world_size=2, generator=g()))
    r1 = list(GlobalBatchSampler(40, 4, rank=1, world_size=2, generator=g()))
    assert len(single) == len(r0) == len(r1) == 5
    for s, a, b in zip(single, r0, r1):
        assert s == a + b
    with pytest.raises(DataError, match="cannot fill one batch"):
        GlobalBatchSampler(5, 4, world_size=2)


def test_loader_on_cpu_uses_main_process_and_context_stream(tmp_path):
    ctx = RunContext(device="cpu", seed=1, progress=False, distributed=False)
    d = load_data(limit=32, img_size=8)
    loader = make_loader(d, 8, context=ctx)
    assert loader.num_workers == 0 and not loader.pin_memory
    first = [b.clone() for b in loader]
    assert len(first) == 4 and first[0].shape == (8, 3, 8, 8)
    ctx2 = RunContext(device="cpu", seed=1, progress=False, distributed=False)
    again = list(make_loader(d, 8, context=ctx2))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
