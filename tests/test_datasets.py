"""Data set loaders: real offline sets where installed, tiny generated files for IDX and CIFAR."""
import gzip
import pickle
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from sbnn.errors import UserError
from sbnn.training import datasets as ds
from sbnn.training.datasets import KNOWN_DATASETS, load_dataset, make_loaders, read_idx


def _write_idx(path, arr, compress=False):
    """IDX encoding: 0, 0, type byte, ndim, big-endian uint32 dims, big-endian payload."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}[arr.dtype]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def _assert_images(split, n, shape):
    x, y = split.tensors
    assert x.shape == (n, *shape) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert x.min() >= 0 and x.max() <= 1


# ------------------------------------------------------------------- real sets

_FMNIST_FILES = [f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]


@pytest.mark.skipif(not all((ds.DEBIAN_FASHION_MNIST / f).exists() for f in _FMNIST_FILES),
                    reason="Debian package dataset-fashion-mnist not installed "
                           "(/usr/share/datasets/fashion-mnist); make setup installs it")
def test_fashion_mnist_debian():
    train, test, info = load_dataset("fashion-mnist")
    _assert_images(train, 60000, (1, 28, 28))
    _assert_images(test, 10000, (1, 28, 28))
    for split in (train, test):
        assert set(split.tensors[1].unique().tolist()) == set(range(10))
    assert train.tensors[0].max() == 1.0
    assert (info.num_classes, info.in_shape, info.num_train, info.num_test) == (10, (1, 28, 28), 60000, 10000)
    assert info.class_names[0] == "T-shirt/top"


def test_fashion_mnist_32_is_zero_padded():
    """fashion-mnist-32 (for CNV): the same images and labels with a 2-pixel border of zeros."""
    train, test, info = load_dataset("fashion-mnist", subset=500)
    train32, test32, info32 = load_dataset("fashion-mnist-32", subset=500)
    for a, b in ((train, train32), (test, test32)):
        x, x32 = a.tensors[0], b.tensors[0]
        assert x32.shape[1:] == (1, 32, 32)
        assert torch.equal(x32[:, :, 2:30, 2:30], x) and torch.equal(a.tensors[1], b.tensors[1])
        assert x32[:, :, :2].abs().sum() == 0 and x32[:, :, 30:].abs().sum() == 0
        assert x32[:, :, :, :2].abs().sum() == 0 and x32[:, :, :, 30:].abs().sum() == 0
    assert info32.in_shape == (1, 32, 32) and info32.name == "fashion-mnist-32" and "32x32" in info32.source
    assert info32.class_names == info.class_names


@pytest.mark.parametrize("name, n_train, n_test, shape", [
    ("mnist-5k", 4000, 1000, (1, 28, 28)),
    ("digits", 1438, 359, (1, 8, 8)),
])
def test_bundled_sets_split_deterministic(name, n_train, n_test, shape):
    train, test, info = load_dataset(name)
    _assert_images(train, n_train, shape)
    _assert_images(test, n_test, shape)
    assert info.num_classes == 10 and info.in_shape == shape
    assert train.tensors[0].max() == 1.0  # scaled by the true maximum (255 or 16)
    # same seed -> identical; other seed -> another split
    again, again_test, _ = load_dataset(name)
    assert torch.equal(train.tensors[0], again.tensors[0]) and torch.equal(test.tensors[1], again_test.tensors[1])
    other, _, _ = load_dataset(name, split_seed=1)
    assert not torch.equal(train.tensors[0], other.tensors[0])
    # disjoint and complete: train + test is exactly the source, each row once (as a multiset)
    scale = 16 if name == "digits" else 255
    if name == "digits":
        from sklearn.datasets import load_digits
        src = load_digits().images.reshape(-1, 64)
    else:
        src = np.loadtxt(info.source, delimiter=",", dtype=np.int64)[:, :784]
    split_rows = torch.cat([train.tensors[0], test.tensors[0]]).flatten(1).mul(scale).round().long()
    assert sorted(map(tuple, split_rows.tolist())) == sorted(map(tuple, src.astype(np.int64).tolist()))
    # stratified: each class keeps its share in the test split
    counts = torch.bincount(test.tensors[1], minlength=10)
    assert counts.min() >= 0.8 * counts.max()


def test_subset_is_seeded_and_capped():
    a, b, info = load_dataset("digits", subset=100)
    assert (len(a), len(b), info.num_train, info.num_test) == (100, 100, 100, 100)
    a2, _, _ = load_dataset("digits", subset=100)
    assert torch.equal(a.tensors[0], a2.tensors[0])
    with pytest.raises(UserError, match="subset"):
        load_dataset("digits", subset=0)


# ------------------------------------------------------------------------ IDX

@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip(tmp_path, compress):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(_write_idx(tmp_path / "a", arr, compress)), arr)
    ints = np.array([-5, 7, 1 << 20], dtype=np.int32)
    out = read_idx(_write_idx(tmp_path / "b", ints, compress))
    np.testing.assert_array_equal(out, ints)
    assert out.dtype.isnative


def test_read_idx_bad_magic(tmp_path):
    p = tmp_path / "bad-idx3-ubyte"
    p.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(UserError, match="bad-idx3-ubyte is not an IDX file.*magic"):
        read_idx(p)


@pytest.mark.parametrize("keep", [2, 6, -1], ids=["in-magic", "in-dims", "in-payload"])
def test_read_idx_truncated(tmp_path, keep):
    raw = _write_idx(tmp_path / "full", np.zeros((4, 5, 5), np.uint8)).read_bytes()
    p = tmp_path / "short-idx3-ubyte"
    p.write_bytes(raw[:keep])
    with pytest.raises(UserError, match="short-idx3-ubyte"):
        read_idx(p)


def test_read_idx_truncated_gzip(tmp_path):
    raw = gzip.compress(_write_idx(tmp_path / "full", np.zeros((50, 28, 28), np.uint8)).read_bytes())
    p = tmp_path / "cut-idx3-ubyte.gz"
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError, match="cut-idx3-ubyte.gz"):
        read_idx(p)


def _fake_idx_dir(d, n_train=6, n_test=4, compress=True):
    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(d / f"{prefix}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), compress)
        _write_idx(d / f"{prefix}-labels-idx1-ubyte{sfx}", (np.arange(n) % 10).astype(np.uint8), compress)


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_dataset_from_data_dir(tmp_path, name, compress):
    _fake_idx_dir(tmp_path, compress=compress)
    train, test, info = load_dataset(name, str(tmp_path))
    _assert_images(train, 6, (1, 28, 28))
    _assert_images(test, 4, (1, 28, 28))
    assert train.tensors[1].tolist() == [0, 1, 2, 3, 4, 5]
    expect = read_idx(tmp_path / f"train-images-idx3-ubyte{'.gz' if compress else ''}")[3] / 255.0
    np.testing.assert_allclose(train.tensors[0][3, 0].numpy(), expect, rtol=0, atol=1e-7)


def test_idx_dataset_missing_and_mismatched(tmp_path):
    with pytest.raises(UserError, match="does not exist.*dataset-fashion-mnist.*--data-dir"):
        load_dataset("fashion-mnist", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="train-images-idx3-ubyte.*not found.*dataset-fashion-mnist"):
        load_dataset("fashion-mnist", str(tmp_path))
    with pytest.raises(UserError, match="mnist-5k"):
        load_dataset("mnist")
    _fake_idx_dir(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), True)  # 4 images, 3 labels
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", str(tmp_path))


# ---------------------------------------------------------------------- CIFAR

def _cifar_rows(n, seed):
    """Random rows in the on-disk layout plus the (N, 3, 32, 32) images they must decode to."""
    rows = np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)
    return rows, rows.reshape(n, 3, 32, 32)


def _make_cifar10(root, protocol=pickle.HIGHEST_PROTOCOL):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    images, labels = [], []
    for i in range(1, 6):
        rows, img = _cifar_rows(4, i)
        lab = [(i + j) % 10 for j in range(4)]
        if i == 1:  # one known pixel: channel G (1), row 5, column 7 -> row offset 1024 + 5*32 + 7
            rows[0, 1024 + 5 * 32 + 7] = 201
            rows[0, 0], rows[0, 2048 + 31 * 32 + 31] = 17, 99  # R at (0,0), B at (31,31)
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"batch_label": b"training batch", b"labels": lab, b"data": rows,
                         b"filenames": [b"x.png"] * 4}, f, protocol=protocol)
        images.append(rows.reshape(4, 3, 32, 32))
        labels += lab
    rows, _ = _cifar_rows(3, 9)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"labels": [9, 0, 4], b"data": rows}, f, protocol=protocol)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=protocol)
    return d, np.concatenate(images), labels, rows.reshape(3, 3, 32, 32)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("point_at", ["folder", "parent"])
def test_cifar10_layout(tmp_path, point_at, protocol):
    d, images, labels, test_images = _make_cifar10(tmp_path, protocol)
    train, test, info = load_dataset("cifar10", str(d if point_at == "folder" else tmp_path))
    _assert_images(train, 20, (3, 32, 32))
    _assert_images(test, 3, (3, 32, 32))
    x = train.tensors[0]
    assert x[0, 1, 5, 7].item() == pytest.approx(201 / 255)
    assert x[0, 0, 0, 0].item() == pytest.approx(17 / 255) and x[0, 2, 31, 31].item() == pytest.approx(99 / 255)
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(images))
    assert torch.equal((test.tensors[0] * 255).round().to(torch.uint8), torch.from_numpy(test_images))
    assert train.tensors[1].tolist() == labels and test.tensors[1].tolist() == [9, 0, 4]
    assert (info.num_classes, info.in_shape, info.class_names[9], info.source) == (10, (3, 32, 32), "truck", str(d))


@pytest.mark.parametrize("point_at", ["folder", "parent"])
def test_cifar100_layout(tmp_path, point_at):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    rows, _ = _cifar_rows(4, 0)
    rows[2, 2048 + 31 * 32] = 250  # B, row 31, column 0
    fine, coarse = [0, 99, 42, 7], [0, 19, 5, 1]
    with open(d / "train", "wb") as f:
        pickle.dump({b"data": rows, b"fine_labels": fine, b"coarse_labels": coarse, b"filenames": [b"a"] * 4}, f)
    trows, _ = _cifar_rows(3, 1)
    with open(d / "test", "wb") as f:
        pickle.dump({b"data": trows, b"fine_labels": [1, 2, 3], b"coarse_labels": [0, 0, 0]}, f)
    with open(d / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)], b"coarse_label_names": []}, f)
    train, test, info = load_dataset("cifar100", str(d if point_at == "folder" else tmp_path))
    _assert_images(train, 4, (3, 32, 32))
    _assert_images(test, 3, (3, 32, 32))
    assert train.tensors[0][2, 2, 31, 0].item() == pytest.approx(250 / 255)
    assert train.tensors[1].tolist() == fine and test.tensors[1].tolist() == [1, 2, 3]
    assert info.num_classes == 100 and info.class_names[99] == "c99"


def test_cifar_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="does not exist.*--data-dir"):
        load_dataset("cifar10", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="data_batch_1.*not found.*cifar-10-batches-py"):
        load_dataset("cifar10", str(tmp_path))
    # no network: a clear UserError, not a URLError traceback
    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(UserError, match="could not download cifar100.*no network"):
        load_dataset("cifar100", str(tmp_path / "dl"), download=True)
    # a CIFAR-10 folder handed to cifar100, a corrupt batch, and a pickle that would run code
    d, *_ = _make_cifar10(tmp_path)
    with pytest.raises(UserError, match="cifar100"):
        load_dataset("cifar100", str(d))
    (d / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(UserError, match="data_batch_3"):
        load_dataset("cifar10", str(d))
    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 4, b"x": print}, f)
    with pytest.raises(UserError, match="data_batch_3.*refusing"):
        load_dataset("cifar10", str(d))


# --------------------------------------------------------------- API / loaders

def test_unknown_name_lists_known():
    with pytest.raises(UserError) as e:
        load_dataset("imagenet")
    msg = str(e.value)
    assert "imagenet" in msg and all(n in msg for n in KNOWN_DATASETS) and "\n" not in msg


def test_name_aliases():
    assert load_dataset("Digits", subset=5)[2].name == "digits"
    assert load_dataset("MNIST_5k", subset=5)[2].name == "mnist-5k"


def test_make_loaders_deterministic():
    train, test, _ = load_dataset("digits")
    def epochs(seed):
        tl, vl = make_loaders(train, test, batch_size=64, seed=seed)
        return [torch.cat([y for _, y in tl]) for _ in range(2)], vl
    (e1, e2), vl = epochs(3)
    (f1, f2), _ = epochs(3)
    assert torch.equal(e1, f1) and torch.equal(e2, f2)  # same seed -> same order, epoch by epoch
    assert not torch.equal(e1, e2)  # epochs differ
    assert not torch.equal(e1, epochs(4)[0][0])
    assert sorted(e1.tolist()) == sorted(train.tensors[1].tolist())  # a permutation, last partial batch kept
    batches = list(vl)
    assert len(vl) == len(batches) == -(-len(test) // 64)
    assert batches[0][0].shape == (64, 1, 8, 8) and batches[0][1].dtype == torch.int64
    assert torch.equal(torch.cat([y for _, y in batches]), test.tensors[1])  # test in order
    with pytest.raises(UserError, match="batch size"):
        make_loaders(train, test, batch_size=0, seed=0)


def test_cifar_download_extracts_and_checks_md5(tmp_path, monkeypatch):
    """The download path, served from a local archive: md5 checked, extracted in torchvision's layout."""
    import hashlib
    import io
    import tarfile

    _make_cifar10(tmp_path / "src")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    archive = buf.getvalue()
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(archive))
    entry = list(ds._CIFAR["cifar10"])
    entry[-1] = "0" * 32
    monkeypatch.setitem(ds._CIFAR, "cifar10", tuple(entry))
    with pytest.raises(UserError, match="md5"):
        load_dataset("cifar10", str(tmp_path / "bad"), download=True)
    entry[-1] = hashlib.md5(archive).hexdigest()
    monkeypatch.setitem(ds._CIFAR, "cifar10", tuple(entry))
    train, test, info = load_dataset("cifar10", str(tmp_path / "dl"), download=True)
    assert (len(train), len(test), info.source) == (20, 3, str(tmp_path / "dl" / "cifar-10-batches-py"))


def test_first_test_frames_cover_every_class():
    """rtlsim and the deploy package take the first N test frames: they must not all be one digit."""
    from sbnn.training.datasets import load_dataset

    for name in ("mnist-5k", "digits"):
        _, test_set, _ = load_dataset(name)
        first = test_set.tensors[1][:100].numpy()
        assert len(set(first.tolist())) == 10, f"{name}: first 100 test labels {sorted(set(first.tolist()))}"
