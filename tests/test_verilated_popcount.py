"""hls/verilated_popcount.h: the CPU's popcount in place of Verilator's, the same value for every input.

The stitched and node rtlsim tests check whole designs bit-exact with it on; this test checks the
three macros against Verilator's own functions directly, on 100,000 random values each.
"""

from __future__ import annotations

import platform
import subprocess

import pytest

from sbnn.hls.verilator import DEFAULT_SIM, POPCOUNT_HEADER, SimOptions, find_verilator, host_has_popcnt

CHECK_CPP = r"""
#include "verilated.h"
static IData ref_i(IData x) { return VL_COUNTONES_I(x); }   // Verilator's functions, before the macros
static IData ref_q(QData x) { return VL_COUNTONES_Q(x); }
static IData ref_w(int n, WDataInP p) { return VL_COUNTONES_W(n, p); }
#include "verilated_popcount.h"
#include <cstdio>
#include <random>
int main() {
    std::mt19937_64 rng(1);
    for (int k = 0; k < 100000; ++k) {
        QData q = rng() >> (k % 65 == 64 ? 63 : k % 65);
        IData i = static_cast<IData>(rng() >> (k % 33));
        VlWide<5> w;
        for (int j = 0; j < 5; ++j) w[j] = static_cast<EData>(rng() >> (k % 40));
        if (VL_COUNTONES_I(i) != ref_i(i) || VL_COUNTONES_Q(q) != ref_q(q) || VL_COUNTONES_W(5, w) != ref_w(5, w)) {
            std::printf("mismatch at %d\n", k);
            return 1;
        }
    }
#if defined(__POPCNT__) || defined(__aarch64__)
    std::puts("native");
#else
    std::puts("portable");
#endif
    return 0;
}
"""


def compile_and_run(tmp_path, flags: list[str]) -> str:
    inc = find_verilator() / "include"
    (tmp_path / "check.cpp").write_text(CHECK_CPP)
    exe = tmp_path / "check"
    subprocess.run(["g++", "-O2", "-std=c++17", *flags, f"-I{inc}", f"-I{inc / 'vltstd'}",
                    f"-I{POPCOUNT_HEADER.parent}", str(tmp_path / "check.cpp"), "-o", str(exe)], check=True)
    res = subprocess.run([str(exe)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
    return res.stdout.strip()


def test_native_popcount_macros_equal_verilators_functions(tmp_path):
    native = host_has_popcnt() or platform.machine().lower() in ("aarch64", "arm64")
    flags = ["-mpopcnt"] if host_has_popcnt() else []
    assert compile_and_run(tmp_path, flags) == ("native" if native else "portable")


def test_without_the_instruction_the_header_changes_nothing(tmp_path):
    if platform.machine().lower() in ("aarch64", "arm64"):
        pytest.skip("AArch64 always has a popcount instruction")
    assert compile_and_run(tmp_path, ["-mno-popcnt"]) == "portable"


def test_models_are_built_with_the_header_by_default():
    flags = DEFAULT_SIM.flags()
    assert flags[flags.index("--compiler-include") + 1] == str(POPCOUNT_HEADER)
    assert POPCOUNT_HEADER.is_file()
    assert ("-mpopcnt" in flags) == host_has_popcnt()
    assert "--compiler-include" not in SimOptions(native_popcount=False).flags()
