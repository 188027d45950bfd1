"""Driver of an sbnn accelerator: one API over the board (PYNQ) and over simulation.

This file is copied verbatim into every deploy package as ``driver.py``, next to
``packing.py``, ``streams.py`` and ``config.json``. On the board (PYNQ 2.7 or newer, where pynq lives
in the PYNQ virtualenv, not in the system Python)::

    sudo /usr/local/share/pynq-venv/bin/python3 driver.py --images test_images.npy --labels test_labels.npy

On the host the same classes run over a simulation backend (the tests do this),
so the packing and unpacking code that runs on the board is the code the host
verifies::

    acc = Accelerator("config.json", SimBackend(transfer))
    labels = acc.infer(frames)          # (N,) class indices
    acc.throughput(1000)                # frames per second

A backend moves packed frames through the accelerator: ``transfer(packed_in)``
takes a (N, in frame_bytes) uint8 array (the DMA's memory image of N input
frames, see packing.py) and returns the (N, out frame_bytes) uint8 memory image
of the N output frames.

* :class:`PynqBackend`: Overlay + AXI DMA (``pynq`` is imported lazily; it is
  only installed on the board). Before each transfer the driver writes the
  number of output beats of the batch to the ``out_beats`` AXI GPIO: the
  accelerator's wrapper raises TLAST on the last one, which ends the DMA's
  S2MM transfer.
* :class:`SimBackend`: wraps any callable ``transfer(packed_in) -> packed_out``
  (a Verilator rtlsim of the stitched design, or a Python model on packed words).

Depends on numpy only (and pynq on the board); Python 3.8+.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

if __package__:  # imported as sbnn.bitstreams.driver on the host
    from .packing import StreamSpec, pack_frames, random_frames, unpack_frames, validate_frames
else:  # run as a script from a deploy package: packing.py (and its streams.py) sit next to this file
    from packing import StreamSpec, pack_frames, random_frames, unpack_frames, validate_frames

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT_MEANINGS = ("class_index", "scores", "raw")
# PYNQ >= 2.7 installs pynq into this virtualenv (activated by /etc/profile.d/pynq_venv.sh for root logins)
PYNQ_VENV = "/usr/local/share/pynq-venv"
PYNQ_PYTHON = PYNQ_VENV + "/bin/python3"
DMA_TIMEOUT_S = 10.0   # per DMA transfer; config.json's dma_timeout_s overrides it


def load_config(config) -> dict:
    """config.json path (or an already loaded dict) -> dict, checked for the keys the driver needs."""
    if isinstance(config, dict):
        cfg = config
    else:
        with open(config) as fh:
            try:
                cfg = json.load(fh)
            except ValueError as exc:
                raise ValueError("config %s is not valid JSON (%s); use the package's config.json" % (config, exc))
    if not isinstance(cfg, dict):
        raise ValueError("config: expected a JSON object with 'input' and 'output' stream descriptions")
    for key in ("input", "output"):
        if key not in cfg:
            raise ValueError("config: missing '%s' stream description" % key)
        try:
            StreamSpec.from_dict(cfg[key])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError("config: bad '%s' stream description (%s: %s); use the package's config.json"
                             % (key, type(exc).__name__, exc))
    meaning = cfg["output"].get("meaning", "scores")
    if meaning not in OUTPUT_MEANINGS:
        raise ValueError("config: output meaning %r, expected one of %s" % (meaning, ", ".join(OUTPUT_MEANINGS)))
    return cfg


class Backend:
    """Moves packed frames through the accelerator (see the module docstring)."""

    name = "backend"

    def transfer(self, packed_in: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class SimBackend(Backend):
    """Simulation: ``transfer_fn(packed_in (N, in_bytes) uint8) -> (N, out_bytes) uint8``."""

    def __init__(self, transfer_fn, name: str = "sim"):
        if not callable(transfer_fn):
            raise ValueError("SimBackend needs a callable transfer(packed_in) -> packed_out")
        self.transfer_fn = transfer_fn
        self.name = name

    def transfer(self, packed_in: np.ndarray) -> np.ndarray:
        return np.asarray(self.transfer_fn(packed_in))


class PynqBackend(Backend):
    """The board: PYNQ Overlay, AXI DMA (simple mode) and the ``out_beats`` AXI GPIO."""

    name = "pynq"

    def __init__(self, bitfile: str, config, max_frames: int = 0, timeout_s: float = 0.0):
        try:  # lazily: pynq exists only on the board's PYNQ image, never on the host
            import pynq
        except ImportError:
            raise RuntimeError(pynq_missing_message()) from None
        if not os.path.isfile(bitfile):
            raise FileNotFoundError("bitfile %s not found (the .hwh must sit next to it)" % bitfile)
        cfg = load_config(config)
        self.pynq = pynq
        self.in_spec = StreamSpec.from_dict(cfg["input"])
        self.out_spec = StreamSpec.from_dict(cfg["output"])
        ip = cfg.get("ip", {})
        self.overlay = pynq.Overlay(bitfile)
        self.dma = getattr(self.overlay, ip.get("dma", "dma"))
        beats = self.overlay.ip_dict[ip.get("out_beats", "out_beats")]
        self.out_beats = pynq.MMIO(beats["phys_addr"], beats["addr_range"])  # AXI GPIO: GPIO_DATA at 0x0
        max_bytes = int(cfg.get("dma_max_bytes", (1 << 26) - 1))
        cap = max_bytes // max(self.in_spec.frame_bytes, self.out_spec.frame_bytes)
        self.capacity = max(1, min(cap, max_frames or int(cfg.get("max_frames_per_transfer", 10000))))
        self.timeout_s = float(timeout_s or cfg.get("dma_timeout_s") or DMA_TIMEOUT_S)
        self.ibuf = self.obuf = None
        self.allocated = 0

    def _buffers(self, n: int) -> None:
        if n <= self.allocated:
            return
        self.close()
        self.ibuf = self.pynq.allocate(shape=(n * self.in_spec.frame_bytes,), dtype=np.uint8)
        self.obuf = self.pynq.allocate(shape=(n * self.out_spec.frame_bytes,), dtype=np.uint8)
        self.allocated = n

    def transfer(self, packed_in: np.ndarray) -> np.ndarray:
        n = packed_in.shape[0]
        ib, ob = self.in_spec.frame_bytes, self.out_spec.frame_bytes
        out = np.empty((n, ob), dtype=np.uint8)
        for start in range(0, n, self.capacity):
            k = min(self.capacity, n - start)
            self._buffers(min(n, self.capacity))
            self.ibuf[:k * ib] = packed_in[start:start + k].reshape(-1)
            _sync(self.ibuf, "flush", "sync_to_device")
            self.out_beats.write(0, k * self.out_spec.beats)
            self.dma.recvchannel.transfer(self.obuf, nbytes=k * ob)
            self.dma.sendchannel.transfer(self.ibuf, nbytes=k * ib)
            wait_dma(self.dma.sendchannel, "MM2S (input)", self.timeout_s)
            wait_dma(self.dma.recvchannel, "S2MM (output)", self.timeout_s)
            _sync(self.obuf, "invalidate", "sync_from_device")
            out[start:start + k] = np.asarray(self.obuf[:k * ob]).reshape(k, ob)
        return out

    def close(self) -> None:
        for buf in (self.ibuf, self.obuf):
            if buf is not None and hasattr(buf, "freebuffer"):
                buf.freebuffer()
        self.ibuf = self.obuf = None
        self.allocated = 0


def pynq_missing_message() -> str:
    """What to run instead when this Python has no pynq (PYNQ >= 2.7 keeps it in its virtualenv)."""
    if os.path.isfile(PYNQ_PYTHON):
        return ("pynq is not installed in %s: run with the PYNQ virtualenv's Python, "
                "`sudo %s driver.py ...` (or `sudo -i`, `source /etc/profile.d/pynq_venv.sh`, then python3)"
                % (sys.executable, PYNQ_PYTHON))
    return ("pynq is not installed: run driver.py on the board's PYNQ image (2.7 or newer: `sudo %s driver.py ...`),"
            " or use a SimBackend on the host" % PYNQ_PYTHON)


def wait_dma(channel, what: str, timeout_s: float, poll_s: float = 1e-4) -> None:
    """Wait until a PYNQ AXI DMA channel is idle again, at most ``timeout_s`` seconds.

    PYNQ's ``channel.wait()`` polls without a deadline: a stalled accelerator (or a stream out of step
    after an earlier failure) would hang the driver for ever."""
    deadline = time.monotonic() + timeout_s
    while not channel.idle:
        if getattr(channel, "error", False):
            raise RuntimeError("DMA %s channel reported an error; reload the overlay (run driver.py again, or "
                               "Accelerator.on_board() from Python) to reset the accelerator and the DMA" % what)
        if time.monotonic() > deadline:
            raise RuntimeError("DMA %s transfer did not complete within %g s: the accelerator stalled or its stream "
                               "is out of step; reload the overlay (run driver.py again, or Accelerator.on_board() "
                               "from Python) to reset the accelerator and the DMA" % (what, timeout_s))
        time.sleep(poll_s)


def _sync(buf, *names) -> None:
    for name in names:
        fn = getattr(buf, name, None)
        if fn is not None:
            fn()
            return


class Accelerator:
    """Batch inference over a backend, with the packing of packing.py."""

    def __init__(self, config, backend: Backend, batch: int = 0):
        self.config = load_config(config)
        self.in_spec = StreamSpec.from_dict(self.config["input"])
        self.out_spec = StreamSpec.from_dict(self.config["output"])
        self.meaning = self.config["output"].get("meaning", "scores")
        self.backend = backend
        self.batch = int(batch or self.config.get("batch", 1000))

    @classmethod
    def on_board(cls, bitfile: str = "", config: str = "", batch: int = 0, timeout_s: float = 0.0) -> "Accelerator":
        config = config or os.path.join(HERE, "config.json")
        cfg = load_config(config)
        bitfile = bitfile or os.path.join(os.path.dirname(os.path.abspath(config)), cfg.get("bitfile", ""))
        return cls(cfg, PynqBackend(bitfile, cfg, timeout_s=timeout_s), batch)

    # ---- packing ------------------------------------------------------------
    def pack(self, frames: np.ndarray) -> np.ndarray:
        return pack_frames(frames, self.in_spec)

    def unpack(self, packed_out: np.ndarray) -> np.ndarray:
        return unpack_frames(packed_out, self.out_spec)

    def run_packed(self, packed_in: np.ndarray) -> np.ndarray:
        """(N, in frame_bytes) uint8 -> (N, out frame_bytes) uint8, in batches of ``self.batch``."""
        n = packed_in.shape[0]
        outs = []
        for start in range(0, n, self.batch):
            chunk = packed_in[start:start + self.batch]
            out = np.asarray(self.backend.transfer(chunk))
            want = chunk.shape[0] * self.out_spec.frame_bytes
            if out.dtype != np.uint8 or out.size != want:
                raise RuntimeError("backend %s returned %d %s values for %d frames, expected %d uint8 bytes"
                                   % (self.backend.name, out.size, out.dtype.name, chunk.shape[0], want))
            outs.append(out.reshape(chunk.shape[0], self.out_spec.frame_bytes))
        return np.concatenate(outs, axis=0)

    # ---- inference ----------------------------------------------------------
    def execute(self, frames: np.ndarray) -> np.ndarray:
        """Raw outputs (N, *output shape) as int64: class indices, integer scores or bits."""
        validate_frames(frames, self.in_spec)
        outs = []
        for start in range(0, frames.shape[0], self.batch):  # pack per batch: bounded memory on the board
            packed = pack_frames(frames[start:start + self.batch], self.in_spec, validate=False)
            outs.append(self.unpack(self.run_packed(packed)))
        return np.concatenate(outs, axis=0)

    @property
    def image_layout(self) -> str:
        """Layout of the hardware's image input: NHWC for conv nets (FINN's streaming order), "" otherwise."""
        return self.config.get("image_layout") or ""

    def images_to_frames(self, images: np.ndarray, layout: str = "") -> np.ndarray:
        """uint8 images (N, C, H, W) or (N, H, W, C) -> the hardware's frames (N, H, W, C).

        ``layout`` says how ``images`` are laid out: "NCHW" (PyTorch, torchvision) or "NHWC" (numpy,
        PIL, OpenCV); default: the hardware's own layout from config.json."""
        layout = (layout or self.image_layout).upper()
        if not self.image_layout or layout == self.image_layout:
            return images
        if layout != "NCHW" or self.image_layout != "NHWC":
            raise ValueError("image layout %r: expected NCHW or NHWC" % layout)
        if images.ndim != 4:
            raise ValueError("NCHW images must be 4-D (N, C, H, W), got shape %s" % (images.shape,))
        return np.ascontiguousarray(images.transpose(0, 2, 3, 1))

    def infer(self, frames: np.ndarray, layout: str = "") -> np.ndarray:
        """Class labels (N,) int64: the top-1 index (class_index outputs) or the argmax of the scores.
        Conv nets take uint8 images in either layout (``layout``, see :meth:`images_to_frames`)."""
        frames = self.images_to_frames(frames, layout)
        out = self.execute(frames).reshape(frames.shape[0], -1)
        if self.meaning == "class_index":
            return out[:, 0]
        return out.argmax(axis=1)

    def accuracy(self, frames: np.ndarray, labels: np.ndarray, layout: str = "") -> float:
        labels = np.asarray(labels)
        if labels.shape != (frames.shape[0],):
            raise ValueError("labels: expected shape (%d,) for %d frames, got shape %s"
                             % (frames.shape[0], frames.shape[0], labels.shape))
        return float((self.infer(frames, layout) == labels).mean())

    def throughput(self, n: int = 1000, seed: int = 0) -> dict:
        """Frames per second over n random frames: transfers only (DMA + accelerator) and end to end."""
        if n < 1:
            raise ValueError("throughput: need n >= 1 frames, got %d" % n)
        frames = random_frames(self.in_spec, n, seed)
        t0 = time.perf_counter()
        packed = pack_frames(frames, self.in_spec, validate=False)
        t1 = time.perf_counter()
        out = self.run_packed(packed)
        t2 = time.perf_counter()
        self.unpack(out)
        t3 = time.perf_counter()
        fclk = self.config.get("fclk_mhz")
        return {"frames": n, "batch": self.batch, "backend": self.backend.name,
                "transfer_s": t2 - t1, "fps": n / max(t2 - t1, 1e-12),
                "end_to_end_s": t3 - t0, "fps_end_to_end": n / max(t3 - t0, 1e-12), "fclk_mhz": fclk}

    def close(self) -> None:
        self.backend.close()


def _load_images(path: str, spec: StreamSpec, layout: str = "") -> np.ndarray:
    x = np.load(path, allow_pickle=False)
    if x.ndim < 2 or x.shape[0] == 0 or int(np.prod(x.shape[1:])) != spec.elems:
        raise ValueError("images %s: shape %s, expected (N, ...) with %d values per frame (input shape %s)"
                         % (path, x.shape, spec.elems, spec.shape))
    if layout.upper() == "NCHW":
        return x   # Accelerator.infer transposes (N, C, H, W) to the hardware's NHWC
    if x.ndim >= 2 and x.shape[1:] != spec.shape and int(np.prod(x.shape[1:])) == spec.elems:
        x = x.reshape((x.shape[0],) + spec.shape)  # e.g. (N, 28, 28) images for a (784,) input
    return x


def _check_options(args) -> None:
    """Numbers and paths of the command line, before anything is loaded onto the board."""
    if args.batch < 0:
        raise ValueError("--batch must be >= 0 frames per transfer (0: config.json's batch), got %d" % args.batch)
    if args.timeout < 0:
        raise ValueError("--timeout must be >= 0 seconds (0: config.json's dma_timeout_s), got %g" % args.timeout)
    if args.throughput < 0:
        raise ValueError("--throughput must be >= 0 frames (0: no measurement), got %d" % args.throughput)
    if args.out and os.path.isdir(args.out):
        raise ValueError("--out %s is a directory; pass the .npy file to write the labels to" % args.out)
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise ValueError("--out %s: its folder does not exist; create it or pass another path" % args.out)


def _load_labels(path: str, frames: np.ndarray) -> np.ndarray:
    y = np.load(path, allow_pickle=False).reshape(-1)
    if y.dtype.kind not in "iu" or y.shape[0] < frames.shape[0]:
        raise ValueError("labels %s: expected at least %d integer labels (one per image), got %d %s values"
                         % (path, frames.shape[0], y.shape[0], y.dtype.name))
    return y


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="driver.py", description="Run an sbnn accelerator on a PYNQ board.")
    p.add_argument("--config", default=os.path.join(HERE, "config.json"), help="config.json of the package")
    p.add_argument("--bitfile", default="", help="bitstream (default: the one named in config.json)")
    p.add_argument("--images", default="", help="input frames as .npy (default: test_images.npy if present)")
    p.add_argument("--labels", default="", help="labels as .npy for the accuracy (default: test_labels.npy)")
    p.add_argument("--batch", type=int, default=0, help="frames per DMA transfer (default from config.json)")
    p.add_argument("--throughput", type=int, default=0, metavar="N", help="also measure frames/s over N frames")
    p.add_argument("--out", default="", help="write the predicted labels to this .npy file")
    p.add_argument("--timeout", type=float, default=0.0, metavar="S",
                   help="seconds a DMA transfer may take before the driver gives up (default: config.json's "
                        "dma_timeout_s, else %g)" % DMA_TIMEOUT_S)
    p.add_argument("--layout", default="", choices=("", "NCHW", "NHWC"),
                   help="layout of --images for conv nets: NCHW (PyTorch) or NHWC (default: config.json's "
                        "image_layout, the layout of test_images.npy)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        base = os.path.dirname(os.path.abspath(args.config))
        images = args.images or os.path.join(base, "test_images.npy")
        labels = args.labels or (os.path.join(base, "test_labels.npy") if not args.images else "")
        _check_options(args)
        if not os.path.isfile(images) and not args.throughput:
            raise FileNotFoundError("images %s not found; pass --images FILE.npy or --throughput N" % images)
        # the inputs are read and checked before the board is programmed
        x = _load_images(images, StreamSpec.from_dict(cfg["input"]), args.layout) if os.path.isfile(images) else None
        y = _load_labels(labels, x) if x is not None and labels and os.path.isfile(labels) else None
        acc = Accelerator.on_board(args.bitfile, args.config, args.batch, args.timeout)
        if x is not None:
            t0 = time.perf_counter()
            pred = acc.infer(x, args.layout)
            dt = time.perf_counter() - t0
            print("classified %d frames in %.3f s (%.0f frames/s end to end)" % (len(pred), dt, len(pred) / dt))
            if args.out:
                np.save(args.out, pred)
            if y is not None:
                a = float((pred == y[:len(pred)]).mean())
                # config.json's figure was measured on the shipped images only: no claim for other images
                exp = None if args.images else cfg.get("expected_accuracy")
                print("accuracy %.4f%s" % (a, "" if exp is None else " (expected %.4f on these images)" % exp))
        if args.throughput:
            r = acc.throughput(args.throughput)
            print("throughput %.0f frames/s (DMA + accelerator), %.0f frames/s end to end, %d frames, batch %d"
                  % (r["fps"], r["fps_end_to_end"], r["frames"], r["batch"]))
        acc.close()
    except (ValueError, RuntimeError, OSError) as exc:
        print("driver.py: error: %s" % str(exc).splitlines()[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
