"""Tests for paperlib.core.data, on tiny CIFAR-10 copies built in tmp_path."""

from __future__ import annotations

import io
import os
import pickle
import sys
import tarfile
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from paperlib.core import data as data_mod
from paperlib.core.accel import as_input
from paperlib.core.data import (
    CLASSES,
    Cifar10,
    DataError,
    load_cifar10,
    stratified_indices,
    synthetic_cifar10,
)

PER_CLASS = {"train": 3, "test": 2}


def _random_split(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (N, 3, 32, 32) uint8 images, labels cycling through the classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(per_class * len(CLASSES)) % len(CLASSES)
    return rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8), labels


def _expected() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {split: _random_split(n, seed) for seed, (split, n) in enumerate(PER_CLASS.items())}


def _encode(chw: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(chw.transpose(1, 2, 0)).save(buf, format=fmt)
    return buf.getvalue()


def _tree_files(expected, fmt: str = "PNG", prefix: str = "", classes=CLASSES) -> dict[str, bytes]:
    """Image-folder members {prefix}{split}/{class}/NNNN.{png|jpg} -> encoded bytes."""
    ext = "png" if fmt == "PNG" else "jpg"
    files = {}
    for split, (images, labels) in expected.items():
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            if label < len(classes):
                files[f"{prefix}{split}/{classes[label]}/{i:04d}.{ext}"] = _encode(image, fmt)
    return files


def _batch_files(expected) -> dict[str, bytes]:
    """Official python batches: train split over data_batch_1..5, test split in test_batch."""
    train_images, train_labels = expected["train"]
    chunks = np.array_split(np.arange(len(train_labels)), 5)
    batches = {
        f"data_batch_{i + 1}": (train_images[idx], train_labels[idx])
        for i, idx in enumerate(chunks)
    }
    batches["test_batch"] = expected["test"]
    return {
        f"cifar-10-batches-py/{name}": pickle.dumps(
            {b"data": images.reshape(len(images), -1), b"labels": labels.tolist()}
        )
        for name, (images, labels) in batches.items()
    }


def _write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, blob in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    return root


def _write_archive(path: Path, files: dict[str, bytes]) -> Path:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, blob in files.items():
                zf.writestr(name, blob)
        return path
    mode = {".xz": "w:xz", ".gz": "w:gz", ".tgz": "w:gz", ".tar": "w"}[path.suffix]
    with tarfile.open(path, mode) as tf:
        for name, blob in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return path


def _load(path, tmp_path: Path) -> Cifar10:
    return load_cifar10(path, root=tmp_path / "root", cache_dir=tmp_path / "cache")


def _assert_same_images(data: Cifar10, expected) -> None:
    """Every loaded image is one of the originals, carrying that original's label."""
    for split in ("train", "test"):
        images, labels = expected[split]
        got_images = getattr(data, f"{split}_images")
        got_labels = getattr(data, f"{split}_labels")
        assert got_images.dtype == torch.uint8 and got_labels.dtype == torch.int64
        assert got_images.shape == (len(labels), 3, 32, 32)
        label_of = {img.tobytes(): int(lab) for img, lab in zip(images, labels, strict=True)}
        got = [img.numpy().tobytes() for img in got_images]
        assert sorted(got) == sorted(label_of)
        assert [label_of[g] for g in got] == got_labels.tolist()


def test_batches_folder_matches_pickles_in_order(tmp_path):
    expected = _expected()
    root = _write_dir(tmp_path / "tv", _batch_files(expected))
    for path in (root, root / "cifar-10-batches-py"):
        data = _load(path, tmp_path)
        for split in ("train", "test"):
            images, labels = expected[split]
            assert torch.equal(getattr(data, f"{split}_images"), torch.from_numpy(images))
            assert getattr(data, f"{split}_labels").tolist() == labels.tolist()
        assert "python batches" in data.source and data.note == ""


def test_official_tar_gz_is_read_without_extracting(tmp_path):
    expected = _expected()
    archive = _write_archive(tmp_path / "cifar-10-python.tar.gz", _batch_files(expected))
    data = _load(archive, tmp_path)
    assert torch.equal(data.train_images, torch.from_numpy(expected["train"][0]))
    assert data.test_labels.tolist() == expected["test"][1].tolist()
    assert "python batches" in data.source
    assert not list(tmp_path.rglob("data_batch_1"))  # nothing was extracted to disk


@pytest.mark.parametrize(
    "name", ["tree", "nested-tree", "c.tar.xz", "c.tar.gz", "c.tgz", "c.tar", "c.zip"]
)
def test_png_image_folder_round_trips_pixels_and_labels(tmp_path, name):
    expected = _expected()
    prefix = "cifar-10-images/" if name != "tree" else ""
    files = _tree_files(expected, prefix=prefix)
    if "tree" in name:
        path = _write_dir(tmp_path / name, files)
    else:
        path = _write_archive(tmp_path / name, files)
    data = _load(path, tmp_path)
    _assert_same_images(data, expected)
    assert data.source.startswith("image-folder") and data.note == ""
    # Classes are interleaved, so a prefix of a split is balanced.
    assert data.test_labels[:10].tolist() == list(range(10))


def test_labels_follow_classes_not_alphabetical_order(tmp_path, monkeypatch):
    # CLASSES happens to be alphabetical; reversing it shows labels come from CLASSES.
    expected = _expected()
    folder = _write_dir(tmp_path / "c", _tree_files(expected))
    monkeypatch.setattr(data_mod, "CLASSES", CLASSES[::-1])
    data = _load(folder, tmp_path)
    flipped = {split: (images, 9 - labels) for split, (images, labels) in expected.items()}
    _assert_same_images(data, flipped)


def test_jpeg_copy_carries_a_note(tmp_path):
    archive = _write_archive(tmp_path / "c.tar.xz", _tree_files(_expected(), fmt="JPEG"))
    data = _load(archive, tmp_path)
    assert data.train_images.shape == (30, 3, 32, 32)
    assert "JPEG" in data.note


def test_macos_shadow_folder_in_zip_is_ignored(tmp_path):
    files = _tree_files(_expected(), prefix="c/")
    files["__MACOSX/c/train/cat/._0000.png"] = b"resource fork"
    data = _load(_write_archive(tmp_path / "c.zip", files), tmp_path)
    assert len(data.train_labels) == 30


def test_cache_is_written_and_reused_without_decoding(tmp_path, monkeypatch):
    archive = _write_archive(tmp_path / "c.tar.gz", _tree_files(_expected()))
    first = _load(archive, tmp_path)
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 1

    def no_decoding(path):
        raise AssertionError("decoded again despite a valid cache")

    monkeypatch.setattr(data_mod, "_read_copy", no_decoding)
    second = _load(archive, tmp_path)
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(first, field), getattr(second, field))
    assert (second.source, second.note) == (first.source, first.note)


def test_changed_source_gets_a_new_cache(tmp_path):
    archive = _write_archive(tmp_path / "c.tar.gz", _tree_files(_expected()))
    _load(archive, tmp_path)
    os.utime(archive, ns=(time.time_ns(), time.time_ns() + 10**9))
    _load(archive, tmp_path)
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 2


def test_corrupt_cache_is_deleted_and_rebuilt(tmp_path):
    archive = _write_archive(tmp_path / "c.zip", _tree_files(_expected()))
    first = _load(archive, tmp_path)
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    cache.write_bytes(cache.read_bytes()[:1000])  # truncated, as after a crash
    with pytest.warns(UserWarning, match="unreadable CIFAR-10 cache"):
        second = _load(archive, tmp_path)
    assert torch.equal(first.train_images, second.train_images)
    with np.load(cache) as rebuilt:
        assert rebuilt["train_images"].shape == (30, 3, 32, 32)


def test_failed_build_leaves_no_cache_or_tmp(tmp_path):
    files = _tree_files(_expected())
    files["train/cat/0003.png"] = b"not a png"
    with pytest.raises(DataError):
        _load(_write_archive(tmp_path / "c.tar.gz", files), tmp_path)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_failed_cache_write_leaves_no_tmp(tmp_path, monkeypatch):
    def disk_full(out, **arrays):
        out.write(b"PK\x03\x04 half a cache")
        raise OSError("No space left on device")

    monkeypatch.setattr(data_mod.np, "savez", disk_full)
    archive = _write_archive(tmp_path / "c.tar.gz", _tree_files(_expected()))
    with pytest.warns(UserWarning, match="could not write CIFAR-10 cache"):
        data = _load(archive, tmp_path)
    assert len(data.train_labels) == 30
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file or directory: .*--data PATH"):
        _load(tmp_path / "nowhere.tar.xz", tmp_path)


def test_wrong_layout(tmp_path):
    folder = _write_dir(
        tmp_path / "c", {"images/cat/0.png": _encode(_expected()["test"][0][0], "PNG")}
    )
    with pytest.raises(DataError, match=r"no train/test split folders.*train/<class>"):
        _load(folder, tmp_path)


def test_missing_test_split(tmp_path):
    files = {k: v for k, v in _tree_files(_expected()).items() if k.startswith("train/")}
    with pytest.raises(DataError, match="no test/ folder"):
        _load(_write_dir(tmp_path / "c", files), tmp_path)


def test_nine_classes(tmp_path):
    files = _tree_files(_expected(), classes=CLASSES[:9])
    with pytest.raises(DataError, match=r"missing or empty: \['truck'\]"):
        _load(_write_archive(tmp_path / "c.tar.xz", files), tmp_path)


def test_unexpected_class_folder(tmp_path):
    files = _tree_files(_expected(), classes=(*CLASSES[:9], "lorry"))
    with pytest.raises(DataError, match=r"unexpected: \['lorry'\]"):
        _load(_write_dir(tmp_path / "c", files), tmp_path)


def test_unbalanced_counts(tmp_path):
    files = _tree_files(_expected())
    del files["train/dog/0005.png"]
    with pytest.raises(DataError, match=r"unequal class counts .*'dog': 2.*incomplete"):
        _load(_write_dir(tmp_path / "c", files), tmp_path)


def test_two_image_trees_are_ambiguous(tmp_path):
    files = {**_tree_files(_expected(), prefix="a/"), **_tree_files(_expected(), prefix="b/")}
    with pytest.raises(DataError, match="more than one image tree"):
        _load(_write_dir(tmp_path / "c", files), tmp_path)


def test_corrupt_image_in_tar_gz_names_the_member(tmp_path):
    files = _tree_files(_expected(), prefix="cifar-10-images/")
    files["cifar-10-images/test/frog/0006.png"] = b"\x89PNG garbage"
    with pytest.raises(DataError, match="cifar-10-images/test/frog/0006.png"):
        _load(_write_archive(tmp_path / "c.tar.gz", files), tmp_path)


@pytest.mark.parametrize(("size", "mode"), [((16, 16), "RGB"), ((32, 32), "L")])
def test_non_cifar_image_names_the_member(tmp_path, size, mode):
    files = _tree_files(_expected())
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    files["train/ship/0008.png"] = buf.getvalue()
    with pytest.raises(DataError, match=r"train/ship/0008.png is a .* image.*32x32 RGB"):
        _load(_write_dir(tmp_path / "c", files), tmp_path)


def test_text_file_named_like_an_archive(tmp_path):
    fake = tmp_path / "cifar10.tar.xz"
    fake.write_text("this is not an archive\n" * 50)
    with pytest.raises(DataError, match="not a readable archive"):
        _load(fake, tmp_path)


def test_missing_batch_file(tmp_path):
    files = _batch_files(_expected())
    del files["cifar-10-batches-py/test_batch"]
    with pytest.raises(DataError, match="lacks test_batch"):
        _load(_write_dir(tmp_path / "tv", files), tmp_path)


class _FakeTorchvisionCifar10:
    """Stands in for torchvision.datasets.CIFAR10: HWC uint8 data, list targets."""

    def __init__(self, root, train, download):
        images, labels = _expected()["train" if train else "test"]
        self.data = images.transpose(0, 2, 3, 1)
        self.targets = labels.tolist()


def _fake_torchvision(monkeypatch, cifar10_class) -> None:
    # A stub module avoids importing torchvision, which takes seconds.
    module = types.SimpleNamespace(CIFAR10=cifar10_class)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", module)


def test_torchvision_root_converts_to_nchw(tmp_path, monkeypatch):
    _fake_torchvision(monkeypatch, _FakeTorchvisionCifar10)
    data = load_cifar10(None, root=tmp_path)
    expected = _expected()
    assert torch.equal(data.train_images, torch.from_numpy(expected["train"][0]))
    assert data.test_labels.tolist() == expected["test"][1].tolist()
    assert data.train_images.is_contiguous()


@pytest.mark.parametrize(
    ("download", "error", "message"),
    [
        (False, RuntimeError("Dataset not found or corrupted."), "not found.*--data PATH"),
        (True, OSError("<urlopen error [Errno -3] name resolution>"), "download.*failed.*--data"),
    ],
)
def test_torchvision_root_errors(tmp_path, monkeypatch, download, error, message):
    def failing(root, train, download):
        raise error

    _fake_torchvision(monkeypatch, failing)
    with pytest.raises(DataError, match=message):
        load_cifar10(None, root=tmp_path, download=download)


def test_stratified_indices_counts_and_determinism():
    labels = torch.arange(200) % 10
    picked = stratified_indices(labels, 25, seed=3)
    assert picked.dtype == torch.int64 and torch.equal(picked, picked.sort().values)
    assert torch.bincount(labels[picked], minlength=10).tolist() == [3] * 5 + [2] * 5
    assert torch.equal(picked, stratified_indices(labels, 25, seed=3))
    assert not torch.equal(picked, stratified_indices(labels, 25, seed=4))
    assert set(stratified_indices(labels, 10, seed=3).tolist()) <= set(picked.tolist())


def test_stratified_indices_exclude_and_limits():
    labels = torch.arange(200) % 10
    train = stratified_indices(labels, 100, seed=0)
    val = stratified_indices(labels, 100, seed=0, exclude=train)
    assert not set(train.tolist()) & set(val.tolist())
    assert torch.bincount(labels[val], minlength=10).tolist() == [10] * 10
    assert torch.equal(stratified_indices(labels, 500, seed=0), torch.arange(200))
    with pytest.raises(DataError, match="class 'airplane' has only 0 images outside"):
        stratified_indices(labels, 10, seed=0, exclude=torch.cat([train, val]))


def test_as_input_turns_pixels_into_unit_floats_and_leaves_floats_alone():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8)
    out = as_input(images)
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.tensor([0.0, 0.2, 1.0]))
    crafted = torch.tensor([0.0, 0.2001, 1.0])  # an adversarial image keeps its precision
    assert as_input(crafted) is crafted


def test_synthetic_is_balanced_deterministic_and_learnable():
    data = synthetic_cifar10(200, 100, seed=1)
    assert data.train_images.shape == (200, 3, 32, 32) and data.train_images.dtype == torch.uint8
    assert torch.bincount(data.test_labels).tolist() == [10] * 10
    assert "not comparable" in data.note
    again = synthetic_cifar10(200, 100, seed=1)
    assert torch.equal(data.train_images, again.train_images)
    assert not torch.equal(data.train_images, synthetic_cifar10(200, 100, seed=2).train_images)
    # A nearest-class-mean classifier separates the classes, so a network can learn them.
    train, test = as_input(data.train_images), as_input(data.test_images)
    means = torch.stack([train[data.train_labels == c].mean(0) for c in range(10)])
    predicted = torch.cdist(test.flatten(1), means.flatten(1)).argmin(1)
    assert (predicted == data.test_labels).float().mean() > 0.9


@pytest.mark.slow
@pytest.mark.skipif(
    "PAPERLIB_DATA" not in os.environ, reason="set PAPERLIB_DATA to a full CIFAR-10 copy"
)
def test_real_copy(tmp_path):
    path = os.environ["PAPERLIB_DATA"]
    start = time.perf_counter()
    data = _load(path, tmp_path)
    decoded = time.perf_counter() - start
    start = time.perf_counter()
    cached = _load(path, tmp_path)
    print(f"decode {decoded:.1f} s, cache {time.perf_counter() - start:.2f} s")
    assert data.train_images.shape == (50_000, 3, 32, 32)
    assert data.test_images.shape == (10_000, 3, 32, 32)
    assert torch.bincount(data.train_labels).tolist() == [5_000] * 10
    assert torch.bincount(data.test_labels).tolist() == [1_000] * 10
    assert torch.equal(data.test_images, cached.test_images)
    if data.source.startswith("image-folder"):
        assert "JPEG" in data.note  # the image-folder copies of CIFAR-10 in use are JPEG
    else:
        assert data.note == ""
