"""The fabric clock a built design really gets, read from its hardware handoff (``.hwh``).

Vivado rounds the PS's PL clock to what its dividers reach (``PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ`` on
Zynq-7000, ``PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ`` on Zynq UltraScale+), and PYNQ programs that
clock from the same file when it loads the overlay. A design timed for one clock and run at another is
either slower than reported or failing timing, so :func:`check_fclk` compares the two after every build.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

# achieved-frequency parameters of the PS module, in MHz
ACT_PARAMS = ("PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ", "PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ")
# the PS's fabric clock outputs, whose CLKFREQUENCY (Hz) is the fallback
CLOCK_PORTS = ("FCLK_CLK0", "pl_clk0")
PS_MODTYPES = ("processing_system7", "zynq_ultra_ps_e")
# PS dividers land within a few kHz of round targets (100 MHz -> 99.999001 MHz); more is another clock
TOLERANCE = 0.005


@dataclass
class ClockCheck:
    requested_mhz: float
    achieved_mhz: float | None     # None: the .hwh names no PL clock
    ok: bool
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def achieved_fclk_mhz(hwh: str | Path) -> float | None:
    """PL clock 0 of the design's PS in MHz, or None when the file holds no PS or cannot be read."""
    try:
        root = ET.parse(hwh).getroot()
    except (OSError, ET.ParseError):
        return None
    for module in root.iter("MODULE"):
        if module.get("MODTYPE") not in PS_MODTYPES:
            continue
        for param in module.iter("PARAMETER"):
            if param.get("NAME") in ACT_PARAMS and _number(param.get("VALUE")) is not None:
                return _number(param.get("VALUE"))
        for port in module.iter("PORT"):
            hz = _number(port.get("CLKFREQUENCY"))
            if port.get("NAME") in CLOCK_PORTS and hz:
                return hz / 1e6
    return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def check_fclk(hwh: str | Path, requested_mhz: float) -> ClockCheck:
    """Compare the achieved PL clock in ``hwh`` with ``requested_mhz`` (relative tolerance ``TOLERANCE``)."""
    got = achieved_fclk_mhz(hwh)
    if got is None:
        return ClockCheck(requested_mhz, None, False, f"{Path(hwh).name} names no PL clock of the PS: the fabric "
                          f"clock the bitstream runs at is unknown (requested {requested_mhz:g} MHz)")
    if abs(got - requested_mhz) <= TOLERANCE * requested_mhz:
        return ClockCheck(requested_mhz, got, True, f"fabric clock {got:g} MHz (requested {requested_mhz:g} MHz)")
    return ClockCheck(requested_mhz, got, False,
                      f"the bitstream's fabric clock is {got:g} MHz, not the requested {requested_mhz:g} MHz "
                      f"(Vivado could not reach it with the PS's dividers): timing and FPS figures were computed "
                      f"for {requested_mhz:g} MHz; pick a clock the PS reaches or check {Path(hwh).name}")
