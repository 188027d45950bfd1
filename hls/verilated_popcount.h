// Hardware popcount for Verilated models (sbnn.hls.verilator.SimOptions.native_popcount).
//
// Verilator emits VL_COUNTONES_I/_Q/_W for $countones and for the sums of single bits its DFG
// pass recognises as popcounts (the sparse MVAU's lane sums and input popcount). Its own
// versions are portable bit tricks, about a dozen instructions per 32-bit word; with the
// compiler targeting a popcount instruction (-mpopcnt on x86-64, always on AArch64) one
// instruction does. Same value for every input: both count the set bits of the argument
// converted to IData/QData. Included into the model's precompiled header after verilated.h
// (Verilator --compiler-include), so the macros replace only the calls in the model's code.
#ifndef SBNN_VERILATED_POPCOUNT_H_
#define SBNN_VERILATED_POPCOUNT_H_
#include "verilated.h"
#if defined(__POPCNT__) || defined(__aarch64__)
static inline IData sbnn_countones_w(int words, WDataInP const lwp) VL_PURE {
    IData r = 0;
    for (int i = 0; i < words; ++i) r += static_cast<IData>(__builtin_popcount(static_cast<IData>(lwp[i])));
    return r;
}
#define VL_COUNTONES_I(x) (static_cast<IData>(__builtin_popcount(static_cast<IData>(x))))
#define VL_COUNTONES_Q(x) (static_cast<IData>(__builtin_popcountll(static_cast<QData>(x))))
#define VL_COUNTONES_W(words, lwp) (sbnn_countones_w((words), (lwp)))
#endif
#endif  // SBNN_VERILATED_POPCOUNT_H_
