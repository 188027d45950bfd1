"""Simulation forms: generated RTL text that only the rtlsim's Verilator reads.

Some logic is written twice in a generated module, the same values at every output on every cycle, once
for synthesis and once for Verilator's C++ model, which evaluates every expression of the design each
clock cycle whether its result is used or not:

    `ifdef SBNN_RTLSIM
      <the simulation form>
    `else
      <the synthesis form>
    `endif

The sparse MVAU has four (rtlgen.py, verilog_text.py): the output FIFO written at one place, a baked layer's
sums as word popcounts, a binary memory-mode layer's masked blocks in one wide register, a lane's running-sum
update written out.
``SBNN_RTLSIM`` is defined only by our Verilator builds (``sbnn.hls.verilator.SimOptions.sim_forms``);
Yosys, Vivado and iverilog read the synthesis form. Each simulation form says in the generator why it is
faster and why it is the same behaviour; tests/test_sim_forms.py simulates designs both ways and compares
every output beat and its cycle.

Yosys figures are cached by a hash of the text Yosys reads (:func:`synthesis_view`), so a simulation form
added or changed leaves every cached synthesis result valid.
"""

from __future__ import annotations

SIM_DEFINE = "SBNN_RTLSIM"
_IFDEF, _ELSE, _ENDIF = f"`ifdef {SIM_DEFINE}", "`else", "`endif"


def sim_alternative(sim: list[str], synth: list[str]) -> list[str]:
    """``sim`` for the rtlsim, ``synth`` for every other tool; just ``synth`` when both are the same text."""
    if sim == synth:
        return list(synth)
    return [_IFDEF, *sim, _ELSE, *synth, _ENDIF]


def synthesis_view(verilog: str) -> str:
    """The text without its simulation forms: what a tool that does not define SBNN_RTLSIM reads, byte for
    byte as the generator wrote the synthesis form (no other preprocessing)."""
    return _view(verilog, "synth")


def simulation_view(verilog: str) -> str:
    """The text the rtlsim's Verilator reads (the simulation forms instead of their synthesis forms)."""
    return _view(verilog, "sim")


def _view(verilog: str, keep: str) -> str:
    if _IFDEF not in verilog:
        return verilog
    out, state = [], None   # None: outside; "sim": in the simulation form; "synth": in the synthesis form
    for line in verilog.split("\n"):
        if line == _IFDEF and state is None:
            state = "sim"
        elif line == _ELSE and state == "sim":
            state = "synth"
        elif line == _ENDIF and state is not None:
            state = None
        elif state in (None, keep):
            out.append(line)
    if state is not None:
        raise ValueError(f"unterminated `ifdef {SIM_DEFINE} block in generated Verilog")
    return "\n".join(out)
