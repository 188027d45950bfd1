"""Verification images and labels from the user's own files (``--images X.npy --labels y.npy``).

Images are what the board receives: integer pixels ``0..max`` when the compile merged the pixel scaling
(``input_max_value``; 0..255 for 8-bit images), the model's float input otherwise; one image per row of the
first axis, in the model's input shape, flattened, or NHWC for an NCHW image model. Labels are class indices,
one per image. Files are read with ``numpy.load(allow_pickle=False)``: a pickle (which can run code) is
refused. Every problem is one line saying what was wrong and what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbnn.errors import UserError
from sbnn.training.datasets import KNOWN_DATASETS, load_dataset


def load_npy(path, what: str) -> np.ndarray:
    """A numeric array from a .npy file, never unpickling anything."""
    p = Path(path)
    if p.suffix.lower() != ".npy":
        raise UserError(f"--{what} {p} must be a .npy file (written by numpy.save)")
    try:
        a = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise UserError(f"--{what} {p} holds pickled Python objects, which sbnn does not load (unpickling "
                            "can run code); save a plain numeric array with numpy.save") from None
        raise UserError(f"--{what} {p} is not a readable .npy file ({exc}); write it with numpy.save") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"--{what} {p} cannot be read ({exc}); write it with numpy.save") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        kind = type(a).__name__ if not isinstance(a, np.ndarray) else a.dtype
        raise UserError(f"--{what} {p} holds {kind}, not numbers; save a numeric array with numpy.save")
    return a


def check_images(images: np.ndarray, path, frames: int) -> None:
    if images.ndim < 2 or images.shape[0] == 0:
        raise UserError(f"--images {path} has shape {images.shape}; save one image per row of the first axis, "
                        "(N, ...) with N >= 1")
    if images.shape[0] < frames:
        raise UserError(f"--images {path} holds {images.shape[0]} images, fewer than --frames {frames}; lower "
                        "--frames or pass more images")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise UserError(f"--images {path} holds NaN or infinite values; pass finite pixel values")


def check_labels(labels: np.ndarray, path, n_images: int) -> None:
    if labels.ndim != 1:
        raise UserError(f"--labels {path} has shape {labels.shape}; save one class index per image, shape (N,)")
    if labels.dtype.kind not in "iu":
        raise UserError(f"--labels {path} holds {labels.dtype} values; save integer class indices "
                        "(labels.astype(numpy.int64))")
    if labels.shape[0] != n_images:
        raise UserError(f"--labels {path} holds {labels.shape[0]} labels for {n_images} images; pass one label "
                        "per image")
    if labels.size and labels.min() < 0:
        raise UserError(f"--labels {path} holds negative values (min {labels.min()}); labels are class indices "
                        "0, 1, ...")


def check_files(images, labels, frames: int) -> None:
    """What can be checked without the model: readable, numeric, enough images, one valid label per image."""
    x = load_npy(images, "images")
    check_images(x, images, frames)
    if labels is not None:
        check_labels(load_npy(labels, "labels"), labels, x.shape[0])


def check_data_options(frames: int, dataset: str | None, images: str | None, labels: str | None) -> None:
    """Verification data options on their own (before the model is known): a known data set name, readable
    .npy files with one valid label per image and at least ``frames`` images."""
    if dataset is not None and dataset.strip().lower() not in KNOWN_DATASETS:
        raise UserError(f"--dataset must be one of {', '.join(KNOWN_DATASETS)}, got {dataset!r}")
    if labels is not None and images is None:
        raise UserError("--labels needs --images (the labels belong to those images)")
    for flag, path in (("--images", images), ("--labels", labels)):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{flag} {path} not found; pass a .npy file written by numpy.save")
    if images is not None:
        check_files(images, labels, frames)


def check_dataset_frames(frames: int, dataset: str, data_dir: str | None = None) -> None:
    """``frames`` test images exist in ``dataset``: a larger --frames stops now, not after compile and stitch."""
    _, _, info = load_dataset(dataset, data_dir)
    if frames > info.num_test:
        raise UserError(f"--frames {frames} exceeds the {info.num_test} test images of {info.name}; pass --frames "
                        f"{info.num_test} or fewer, or --images with more images")


def check_test_frames(frames: int, dataset: str | None, recorded: str | None, images: str | None,
                      data_dir: str | None = None) -> None:
    """When verification uses a data set's test images (``--dataset``, else the one the model records; not
    with --images), it holds at least ``frames`` of them."""
    name = dataset or recorded
    if images is None and name:
        check_dataset_frames(frames, name, data_dir)


def as_model_input(x: np.ndarray, in_shape, what: str) -> np.ndarray:
    """``x`` (N, ...) in the model's input shape ``in_shape`` (batch first): as it is, flattened, or NHWC
    for an NCHW image model; a wrong pixel count is an error naming both counts."""
    want = tuple(int(d) for d in in_shape[1:])
    per = int(np.prod(want))
    got = int(np.prod(x.shape[1:]))
    if got != per:
        raise UserError(f"{what} has {got} values per image (shape {tuple(x.shape[1:])}), the model takes {per} "
                        f"(shape {want}); pass images of the model's input size")
    if len(want) == 3 and x.ndim == 4 and tuple(x.shape[1:]) == (want[1], want[2], want[0]) \
            and tuple(x.shape[1:]) != want:
        x = x.transpose(0, 3, 1, 2)   # NHWC, as the deploy package ships images
    return np.ascontiguousarray(x).reshape(x.shape[0], *want)


def check_pixels(x: np.ndarray, max_value: int | None, what: str) -> None:
    """Integer pixels 0..max_value when the hardware takes pixels (the model reads pixel / max_value)."""
    if not max_value:
        return
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > max_value:
        raise UserError(f"{what} holds values from {lo:g} to {hi:g}, outside the pixels 0..{max_value} the "
                        f"hardware takes (the model reads pixel / {max_value}); pass raw pixels")
    if x.dtype.kind == "f" and not np.array_equal(x, np.round(x)):
        raise UserError(f"{what} holds fractional values; pass integer pixels 0..{max_value} (images scaled to "
                        f"[0, 1] times {max_value})")


def check_classes(labels: np.ndarray, num_classes: int | None, what: str) -> None:
    if num_classes and labels.size and labels.max() >= num_classes:
        raise UserError(f"{what} holds label {labels.max()}, but the model has {num_classes} classes (0.."
                        f"{num_classes - 1}); pass the labels of the model's classes")


def load_frames(images, labels, frames: int, in_shape, max_value: int | None, num_classes: int | None = None, *,
                at_most: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The first ``frames`` images (``at_most``: fewer when the file holds fewer) as float32 graph inputs
    (N, *in_shape[1:]) and their labels (or None)."""
    x = load_npy(images, "images")
    if at_most:
        frames = min(frames, x.shape[0])
    check_images(x, images, frames)
    y = None
    if labels is not None:
        y = load_npy(labels, "labels")
        check_labels(y, labels, x.shape[0])
        check_classes(y, num_classes, f"--labels {labels}")
        y = y[:frames].astype(np.int64)
    x = as_model_input(x[:frames], in_shape, f"--images {images}")
    check_pixels(x, max_value, f"--images {images}")
    return x.astype(np.float32), y
