"""One textual patch of finn-rtllib's ``fifo.sv`` so that Verilator 5.048 can elaborate it.

Verilator 5.048 cannot constant-evaluate the struct-valued ``INIT_ABITS()``
function; the patched copy computes the same two numbers with two int-valued
functions. Everything else of FINN's RTL is used verbatim.
"""

from __future__ import annotations

from sbnn.errors import UserError

_FIFO_ABITS_OLD = """\ttypedef struct {
\t\tint unsigned  lo;
\t\tint unsigned  hi;
\t} abits_t;
\tfunction abits_t INIT_ABITS();
\t\tautomatic abits_t  abits = '{ lo: $clog2(DEPTH_REQ), hi: 0 };
\t\tif(abits.lo > MIN_ABITS) begin
\t\t\t// Consider Decomposition into lo + hi
\t\t\tautomatic int unsigned  hi_abits = $clog2(DEPTH_REQ - 2**(abits.lo-1));
\t\t\tif(hi_abits < abits.lo - 1) begin
\t\t\t\tabits.lo--;
\t\t\t\tabits.hi = hi_abits < 1? 1 : hi_abits;
\t\t\tend
\t\tend
\t\treturn  abits;
\tendfunction : INIT_ABITS
\tlocalparam abits_t       ABITS      = INIT_ABITS();
"""
_FIFO_ABITS_NEW = """\t// sbnn patch: Verilator 5.048 cannot constant-evaluate a struct-valued
\t// function; the same decomposition as two int-valued functions.
\tfunction int unsigned INIT_ABITS_LO();
\t\tautomatic int unsigned  lo = $clog2(DEPTH_REQ);
\t\tif(lo > MIN_ABITS && $clog2(DEPTH_REQ - 2**(lo-1)) < lo - 1)  lo--;
\t\treturn  lo;
\tendfunction : INIT_ABITS_LO
\tfunction int unsigned INIT_ABITS_HI();
\t\tautomatic int unsigned  lo = $clog2(DEPTH_REQ);
\t\tautomatic int unsigned  hi = 0;
\t\tif(lo > MIN_ABITS) begin
\t\t\tautomatic int unsigned  hi_abits = $clog2(DEPTH_REQ - 2**(lo-1));
\t\t\tif(hi_abits < lo - 1)  hi = hi_abits < 1? 1 : hi_abits;
\t\tend
\t\treturn  hi;
\tendfunction : INIT_ABITS_HI
\tlocalparam int unsigned  ABITS_LO = INIT_ABITS_LO();
\tlocalparam int unsigned  ABITS_HI = INIT_ABITS_HI();
"""


def patch_fifo(text: str) -> str:
    """fifo.sv for Verilator 5.048: the struct-valued INIT_ABITS() becomes two int functions (same values)."""
    if _FIFO_ABITS_OLD not in text:
        if "INIT_ABITS_LO" in text or "abits_t" not in text:
            return text
        raise UserError("finn-rtllib fifo.sv changed: sbnn's Verilator patch no longer applies; "
                        "update sbnn.hls.finn_rtl.fifo_patch")
    return text.replace(_FIFO_ABITS_OLD, _FIFO_ABITS_NEW).replace("ABITS.lo", "ABITS_LO").replace("ABITS.hi", "ABITS_HI")
