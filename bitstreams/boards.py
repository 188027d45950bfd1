"""Board catalog: adding a board means adding one entry to ``BOARDS``."""

from __future__ import annotations

from dataclasses import dataclass

from sbnn.errors import UserError


@dataclass(frozen=True)
class Board:
    name: str
    part: str            # Xilinx part number for Vivado
    ps: str              # processing system: "ps7" (Zynq-7000) or "ps8" (Zynq UltraScale+)
    fclk_mhz: float      # default fabric clock for the accelerator
    memory: str          # how the PS reaches the accelerator's DMA: HP/HPC AXI port
    family: str          # Yosys synth_xilinx -family
    lut: int             # resources of the part, for fit checks
    ff: int
    bram36: int
    dsp: int
    board_part: str = ""  # Vivado board part (preset for the PS); used when its board files are installed

    @property
    def stream_bits(self) -> int:
        """Data width of the PS memory port the accelerator's DMA reads from: Zynq-7000's S_AXI_HP ports
        are 64 bits wide, Zynq UltraScale+'s S_AXI_HP*_FPD 128 (Xilinx UG585 / UG1085). A frame's input
        cannot stream in faster than this many bits per cycle, whatever the folding."""
        return 64 if self.ps == "ps7" else 128


BOARDS = {b.name: b for b in (
    Board("pynq-z1", "xc7z020clg400-1", "ps7", 100.0, "S_AXI_HP0", "xc7", 53200, 106400, 140, 220,
          "www.digilentinc.com:pynq-z1:part0:1.0"),
    Board("pynq-z2", "xc7z020clg400-1", "ps7", 100.0, "S_AXI_HP0", "xc7", 53200, 106400, 140, 220,
          "tul.com.tw:pynq-z2:part0:1.0"),
    Board("ultra96-v2", "xczu3eg-sbva484-1-i", "ps8", 150.0, "S_AXI_HP0_FPD", "xcup", 70560, 141120, 216, 360,
          "avnet.com:ultra96v2:part0:1.2"),
    Board("zcu104", "xczu7ev-ffvc1156-2-e", "ps8", 187.5, "S_AXI_HP0_FPD", "xcup", 230400, 460800, 312, 1728,
          "xilinx.com:zcu104:part0:1.1"),
    Board("kv260", "xck26-sfvc784-2LV-c", "ps8", 200.0, "S_AXI_HP0_FPD", "xcup", 117120, 234240, 144, 1248,
          "xilinx.com:kv260_som:part0:1.3"),
)}


# The board every stage targets unless told otherwise (sbnn build --board), and its part: the
# default --fpga-part of FINN's layer specialization and of the resource fit checks.
DEFAULT_BOARD = "pynq-z2"
DEFAULT_FPGA_PART = BOARDS[DEFAULT_BOARD].part


def get_board(name: str) -> Board:
    try:
        return BOARDS[name.lower()]
    except KeyError:
        raise UserError(f"unknown board '{name}'; choose one of: {', '.join(BOARDS)}") from None
