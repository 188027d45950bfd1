"""The deploy README's "board checklist": exact commands, the lines they print, and what to expect.

The expected figures are the build's own measurements: the accuracy of the hardware on exactly the
shipped images (FINN's execution of the compiled graph, which rtlsim checks bit-exact against the RTL,
so the board must print the same number), and the frames per second the stitched RTL reached in rtlsim
(steady-state cycles per frame) at the board's fabric clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .driver import PYNQ_PYTHON

THROUGHPUT_FRAMES = 10000


@dataclass(frozen=True)
class BoardExpectations:
    design: str
    deploy_dir: str                  # the folder name as written (what scp copies)
    complete: bool                   # .bit and .hwh in the package
    n_images: int                    # shipped test images (0: none)
    expected_accuracy: float | None  # on exactly the shipped images
    fclk_mhz: float
    cycles_per_frame: float | None   # rtlsim, steady state
    batch: int

    @property
    def fps(self) -> float | None:
        """The accelerator's rate at the board clock: an upper bound for the DMA + accelerator figure."""
        if not self.cycles_per_frame:
            return None
        return self.fclk_mhz * 1e6 / self.cycles_per_frame

    def config_fields(self) -> dict:
        return {"rtlsim_cycles_per_frame": self.cycles_per_frame,
                "expected_fps": None if self.fps is None else round(self.fps, 1)}


def board_checklist(e: BoardExpectations) -> str:
    """Markdown of the checklist: a numbered list."""
    cmd = f"sudo {PYNQ_PYTHON} driver.py --throughput {THROUGHPUT_FRAMES}"
    files = [f"{e.design}.bit", f"{e.design}.hwh", "driver.py", "config.json"] + (
        ["test_images.npy", "test_labels.npy"] if e.n_images else [])
    steps = []
    if not e.complete:
        steps.append(f"Build the bitstream first (see above) and copy `{e.design}.bit` and `{e.design}.hwh` into "
                     f"`{e.deploy_dir}/`.")
    steps.append(f"On the board, `ls ~/{e.deploy_dir}` lists " + ", ".join(f"`{f}`" for f in files) + ".")
    lines = []
    if e.n_images:
        lines.append(f"classified {e.n_images} frames in <seconds> s (<rate> frames/s end to end)")
        if e.expected_accuracy is not None:
            lines.append(f"accuracy {e.expected_accuracy:.4f} (expected {e.expected_accuracy:.4f} on these images)")
    lines.append(f"throughput <rate> frames/s (DMA + accelerator), <rate> frames/s end to end, "
                 f"{THROUGHPUT_FRAMES} frames, batch {e.batch}")
    steps.append(f"In `~/{e.deploy_dir}`, run `{cmd}`. It prints, with measured figures in place of <...>:\n\n"
                 + "\n".join(f"       {ln}" for ln in lines) + "\n")  # an indented block inside the item
    if e.n_images and e.expected_accuracy is not None:
        steps.append(f"It works if the accuracy line reads exactly `accuracy {e.expected_accuracy:.4f} (expected "
                     f"{e.expected_accuracy:.4f} on these images)`: the hardware is bit-exact, so both numbers are "
                     "the same.")
    if e.fps is not None:
        steps.append(f"Speed to expect: the accelerator alone runs at about {e.fps:,.0f} frames/s (rtlsim: "
                     f"{e.cycles_per_frame:g} cycles per frame at {e.fclk_mhz:g} MHz), the ceiling of the "
                     "`DMA + accelerator` rate; the end-to-end rate also counts packing on the ARM cores.")
    steps.append("A line `driver.py: error: ...` says what failed; after a DMA timeout, run the command again "
                 "(it reloads the overlay).")
    return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
