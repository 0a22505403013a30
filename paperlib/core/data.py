"""CIFAR-10 loading: torchvision, the official python batches, or an image-folder copy.

Every source is decoded once into uint8 tensors, verified (ten classes, balanced splits) and
cached as an ``.npz`` so later loads take about a second.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

# torchvision's label order; image folders are mapped by these names, never alphabetically.
CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_BATCH_DIR = "cifar-10-batches-py"
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCHES = ("test_batch",)
_TENSORS = ("train_images", "train_labels", "test_images", "test_labels")
# Bump when the decoded layout changes, so caches written by older code are not reused.
_CACHE_VERSION = "2"

_HOW_TO_PASS = (
    "Point the project at a local CIFAR-10 copy with --data PATH (make: DATA=PATH, or the "
    "PAPERLIB_DATA environment variable), or enable downloading (download=True)."
)
_LAYOUT = (
    "Expected CIFAR-10's python batches (cifar-10-batches-py/ with data_batch_1..5 and "
    "test_batch, or the cifar-10-python.tar.gz holding them), or an image-folder tree "
    "train/<class>/*.jpg|png plus test/<class>/*.jpg|png at the top or one folder down, "
    "as a directory or a .tar.xz/.tar.gz/.tgz/.tar/.zip archive."
)
_JPEG_NOTE = (
    "This CIFAR-10 copy is JPEG-compressed, so its pixels differ slightly from the original "
    "binary batches and clean accuracy may come out a little lower than in the paper."
)


class DataError(RuntimeError):
    """A CIFAR-10 copy is missing, unreadable or incomplete; the message says what to do."""


@dataclass(frozen=True)
class Cifar10:
    train_images: torch.Tensor  # uint8, (N, 3, 32, 32)
    train_labels: torch.Tensor  # int64, (N,)
    test_images: torch.Tensor  # uint8, (M, 3, 32, 32)
    test_labels: torch.Tensor  # int64, (M,)
    source: str  # where the data came from, for reports
    note: str = ""  # caveat a report must repeat; "" if none


def load_cifar10(
    path: str | os.PathLike | None,
    *,
    root: Path,
    download: bool = False,
    cache_dir: Path | None = None,
) -> Cifar10:
    """Load CIFAR-10 from ``path``, or from torchvision's folder ``root`` when ``path`` is None.

    ``path`` may be a torchvision root, a ``cifar-10-batches-py`` folder, the official
    ``cifar-10-python.tar.gz``, or an image-folder tree (directory or archive). Decoded copies
    are cached in ``cache_dir`` (default ``root / "cache"``), keyed on the path and its stat;
    torchvision's own copy (``path`` None) is read directly, as its pickles load quickly.
    """
    if path is None:
        return _load_torchvision(Path(root), download)
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"no such file or directory: {path}. {_HOW_TO_PASS}")
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(root) / "cache"
    cache_file = cache_dir / f"cifar10-{_cache_key(path)}.npz"
    cached = _load_cache(cache_file)
    if cached is not None:
        return cached
    data = _read_copy(path)
    _save_cache(cache_file, data)
    return data


def synthetic_cifar10(n_train: int, n_test: int, seed: int = 0) -> Cifar10:
    """A seeded stand-in for CIFAR-10 that a small network can learn, for smoke tests.

    Each class has its own mean colour and stripe pattern, plus pixel noise. Classes are
    balanced (counts differ by at most one when a size is not a multiple of ten).
    """
    gen = torch.Generator().manual_seed(seed)
    n_classes = len(CLASSES)
    colours = torch.rand(n_classes, 3, 1, 1, generator=gen) * 0.5 + 0.25
    coords = torch.arange(32, dtype=torch.float32) * (2 * torch.pi / 32)
    stripes = []
    for c in range(n_classes):
        # Five stripe frequencies times two orientations give ten distinct textures.
        wave = 0.15 * torch.sin((c % 5 + 1) * coords)
        stripes.append((wave.view(1, 32, 1) if c < 5 else wave.view(1, 1, 32)).expand(3, 32, 32))
    patterns = torch.stack(stripes)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % n_classes
        pixels = (
            colours[labels] + patterns[labels] + 0.08 * torch.randn(n, 3, 32, 32, generator=gen)
        )
        return (pixels.clamp(0, 1) * 255).round().to(torch.uint8), labels

    return Cifar10(
        *make(n_train),
        *make(n_test),
        source="synthetic (no CIFAR-10 copy found)",
        note="Synthetic stand-in data: the numbers are not comparable with the paper.",
    )


def stratified_indices(
    labels: torch.Tensor, n: int, seed: int, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Sorted int64 indices of a seeded subset with ``n // 10`` images per class.

    The remainder of ``n`` goes to the first classes. Indices in ``exclude`` are never picked,
    so a validation set can be carved out disjoint from a training subset. With one seed a
    larger subset contains a smaller one (each class takes a prefix of the same permutation).
    """
    if n < 0:
        raise ValueError(f"subset size must be non-negative, got n={n}")
    if exclude is None and n >= len(labels):
        return torch.arange(len(labels))
    allowed = torch.ones(len(labels), dtype=torch.bool)
    if exclude is not None:
        allowed[exclude] = False
    gen = torch.Generator().manual_seed(seed)
    n_classes = len(CLASSES)
    picked = []
    for c in range(n_classes):
        want = n // n_classes + (c < n % n_classes)
        pool = torch.nonzero((labels == c) & allowed).flatten()
        if len(pool) < want:
            outside = " outside the excluded indices" if exclude is not None else ""
            raise DataError(
                f"class {CLASSES[c]!r} has only {len(pool)} images{outside}, but a stratified "
                f"subset of {n} needs {want}; ask for a smaller subset."
            )
        picked.append(pool[torch.randperm(len(pool), generator=gen)[:want]])
    return torch.cat(picked).sort().values


def _load_torchvision(root: Path, download: bool) -> Cifar10:
    # Imported here: torchvision takes seconds to import and only this source needs it.
    from torchvision.datasets import CIFAR10

    splits = []
    for split in SPLITS:
        try:
            ds = CIFAR10(str(root), train=split == "train", download=download)
        except (RuntimeError, OSError) as exc:  # not found / corrupt, or no network
            if download:
                raise DataError(
                    f"downloading CIFAR-10 to {root} failed ({exc}). {_HOW_TO_PASS}"
                ) from exc
            raise DataError(f"CIFAR-10 not found in {root} ({exc}). {_HOW_TO_PASS}") from exc
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        splits += [images, torch.as_tensor(ds.targets, dtype=torch.int64)]
    data = Cifar10(*splits, source=f"torchvision CIFAR-10 in {root.name}/")
    _verify(data)
    return data


def _read_copy(path: Path) -> Cifar10:
    """Decode a local copy (directory or archive) into a verified Cifar10."""
    if path.is_dir():
        data = _decode_members(_directory_members(path), f"directory {path.name}")
    else:
        data = _decode_members(_archive_members(path), f"archive {path.name}")
    _verify(data)  # also catches batches whose labels do not match their images
    return data


def _wanted(name: str) -> bool:
    """Whether an archive member or file could belong to a CIFAR-10 copy."""
    parts = PurePosixPath(name).parts
    if len(parts) >= 2 and parts[-2] == _BATCH_DIR:
        return parts[-1] in _TRAIN_BATCHES + _TEST_BATCHES
    # <split>/<class>/<file>, at the top or one folder down; deeper trees (e.g. a zip's
    # __MACOSX/ shadow copy) are not the data.
    return (
        len(parts) in (3, 4) and parts[-3] in SPLITS and parts[-1].lower().endswith(IMAGE_SUFFIXES)
    )


def _source_folders(path: Path) -> list[Path]:
    """The folders of a directory copy: its batches folder, or its split and class folders."""
    if path.name == _BATCH_DIR:
        return [path]
    if (path / _BATCH_DIR).is_dir():
        return [path / _BATCH_DIR]
    tops = [path, *sorted(p for p in path.iterdir() if p.is_dir())]
    splits = [top / s for top in tops for s in SPLITS if (top / s).is_dir()]
    return splits + sorted(c for s in splits for c in s.iterdir() if c.is_dir())


def _directory_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) for the files of a directory copy, named like archive members."""
    base = path.parent if path.name == _BATCH_DIR else path
    for folder in _source_folders(path):
        for file in sorted(folder.iterdir()):
            name = file.relative_to(base).as_posix()
            if file.is_file() and _wanted(name):
                yield name, file.read_bytes()


def _archive_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) for the wanted members of a zip or (compressed) tar, in memory."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and _wanted(info.filename):
                        yield info.filename, zf.read(info)
            return
        # Streaming mode reads the archive once, front to back, which is much faster than
        # random access into a compressed tar.
        with tarfile.open(path, "r|*") as tf:
            for member in tf:
                if member.isfile() and _wanted(member.name):
                    yield member.name, tf.extractfile(member).read()
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise DataError(
            f"{path} is not a readable archive ({exc}). Pass a .tar.xz/.tar.gz/.tgz/.tar/.zip "
            "archive or a directory; re-download it if it is truncated."
        ) from exc


def _decode_members(members: Iterator[tuple[str, bytes]], where: str) -> Cifar10:
    """Build a Cifar10 from either python batches or image-folder members."""
    batches: dict[str, bytes] = {}
    images: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = defaultdict(list)
    tops: set[str] = set()
    jpeg = False
    for name, blob in members:
        parts = PurePosixPath(name).parts
        if parts[-2] == _BATCH_DIR:
            batches[parts[-1]] = blob
            continue
        pixels, fmt = _decode_image(name, blob)
        jpeg |= fmt == "JPEG"
        tops.add("/".join(parts[:-3]) or ".")
        images[parts[-3], parts[-2]].append((name, pixels))
    if batches:
        return _from_batches(batches, where)
    if not images:
        raise DataError(f"no train/test split folders found in {where}. {_LAYOUT}")
    if len(tops) > 1:
        raise DataError(
            f"{where} holds more than one image tree ({', '.join(sorted(tops))}); "
            "point at one of them."
        )
    splits = []
    for split in SPLITS:
        found = sorted({c for s, c in images if s == split})
        if not found:
            raise DataError(f"{where} has no {split}/ folder of class folders. {_LAYOUT}")
        if set(found) != set(CLASSES):
            missing = sorted(set(CLASSES) - set(found))
            extra = sorted(set(found) - set(CLASSES))
            raise DataError(
                f"{where}: {split}/ has image folders for classes {found}, expected "
                f"{list(CLASSES)} (missing or empty: {missing}, unexpected: {extra}); rename "
                "the class folders or re-extract the copy."
            )
        # Labels come from CLASSES, never from folder order. Classes are interleaved
        # round-robin (by file name within a class) so any prefix of a split is near-balanced.
        per_class = [sorted(images[split, cls], key=lambda m: m[0]) for cls in CLASSES]
        order = sorted((i, label) for label, ms in enumerate(per_class) for i in range(len(ms)))
        stacked = np.stack([per_class[label][i][1] for i, label in order])
        splits += [
            torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))),
            torch.tensor([label for _, label in order], dtype=torch.int64),
        ]
    return Cifar10(*splits, source=f"image-folder {where}", note=_JPEG_NOTE if jpeg else "")


def _decode_image(name: str, blob: bytes) -> tuple[np.ndarray, str]:
    """Decode one 32x32 RGB image to an HWC uint8 array; return it with its format."""
    try:
        with Image.open(io.BytesIO(blob), formats=("JPEG", "PNG")) as img:
            if img.size != (32, 32) or img.mode != "RGB":
                raise DataError(
                    f"{name} is a {img.size[0]}x{img.size[1]} {img.mode} image, but CIFAR-10 "
                    "images are 32x32 RGB; this is not a CIFAR-10 copy, or it was altered."
                )
            return np.asarray(img), img.format
    except (OSError, SyntaxError, ValueError) as exc:  # what PIL raises on damaged files
        # PIL's own message for an unknown format names a BytesIO object, not the file.
        why = "not a JPEG or PNG file" if isinstance(exc, UnidentifiedImageError) else exc
        raise DataError(
            f"cannot decode image {name} ({why}); the copy is corrupt, re-download or "
            "re-extract it."
        ) from exc


def _from_batches(batches: dict[str, bytes], where: str) -> Cifar10:
    missing = [b for b in _TRAIN_BATCHES + _TEST_BATCHES if b not in batches]
    if missing:
        raise DataError(
            f"{where} lacks {', '.join(missing)} in {_BATCH_DIR}/; the copy is incomplete, "
            "re-download or re-extract cifar-10-python.tar.gz."
        )
    splits = []
    for names in (_TRAIN_BATCHES, _TEST_BATCHES):
        images, labels = zip(*(_unpickle_batch(n, batches[n]) for n in names), strict=True)
        splits += [torch.from_numpy(np.concatenate(a)) for a in (images, labels)]
    return Cifar10(*splits, source=f"CIFAR-10 python batches in {where}")


class _BatchUnpickler(pickle.Unpickler):
    """The official batches are pickles of dicts, lists and numpy arrays; refuse anything
    else, so that a tampered archive cannot run code while it is read."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle_batch(name: str, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return images, np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # unpickling garbage can raise almost any exception type
        raise DataError(f"cannot read CIFAR-10 batch {name} ({exc!r}); re-download it.") from exc


def _verify(data: Cifar10) -> None:
    """Check shapes, label range and class balance of both splits."""
    for split, images, labels in (
        ("train", data.train_images, data.train_labels),
        ("test", data.test_images, data.test_labels),
    ):
        if images.dtype != torch.uint8 or images.shape[1:] != (3, 32, 32):
            raise DataError(
                f"{split} images are {images.dtype} {tuple(images.shape)}, "
                f"expected uint8 (N, 3, 32, 32); {data.source} is not CIFAR-10."
            )
        in_range = bool(((labels >= 0) & (labels < len(CLASSES))).all())
        if labels.dtype != torch.int64 or labels.shape != (len(images),) or not in_range:
            raise DataError(
                f"{split} labels do not match the images or fall outside 0..9; "
                f"{data.source} is not CIFAR-10."
            )
        counts = torch.bincount(labels, minlength=len(CLASSES)).tolist()
        if min(counts) == 0 or len(set(counts)) > 1:
            per_class = dict(zip(CLASSES, counts, strict=True))
            raise DataError(
                f"{split} split has unequal class counts {per_class}, but CIFAR-10 is balanced: "
                f"{data.source} looks incomplete; re-download or re-extract it."
            )


def _cache_key(path: Path) -> str:
    """A short hash that changes whenever the copy at ``path`` is replaced or edited."""
    path = path.resolve()
    if path.is_file():
        stat = path.stat()
        stamps = [f"{stat.st_size}:{stat.st_mtime_ns}"]
    else:
        # A folder's mtime changes when entries are added, removed or renamed in it.
        stamps = [f"{f}:{f.stat().st_mtime_ns}" for f in _source_folders(path)]
    text = "\n".join([_CACHE_VERSION, str(path), *stamps])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _load_cache(file: Path) -> Cifar10 | None:
    """The cached copy, or None if there is none; an unreadable cache is deleted, never used."""
    if not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as npz:
            data = Cifar10(
                *(torch.from_numpy(npz[k]) for k in _TENSORS),
                source=str(npz["source"]),
                note=str(npz["note"]),
            )
        _verify(data)
        return data
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, DataError) as exc:
        warnings.warn(
            f"deleting unreadable CIFAR-10 cache {file} ({exc}); rebuilding it", stacklevel=3
        )
        file.unlink(missing_ok=True)
        return None


def _save_cache(file: Path, data: Cifar10) -> None:
    """Write the cache atomically: a reader sees the old file, the new one, or none."""
    tmp = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.stem}-", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            tensors = {k: getattr(data, k).numpy() for k in _TENSORS}
            # Strings go in as 0-d unicode arrays so the cache loads with allow_pickle=False.
            np.savez(out, **tensors, source=np.array(data.source), note=np.array(data.note))
        os.replace(tmp, file)
        tmp = None
    except OSError as exc:
        # The data itself is fine; only the next load will be slow again.
        warnings.warn(
            f"could not write CIFAR-10 cache {file} ({exc}); "
            "the next load will decode the copy again",
            stacklevel=3,
        )
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
