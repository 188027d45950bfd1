"""Typed configuration of one ``BinaryMaxPool`` node, shared by the RTL generator, the cost model and rtlsim."""

from __future__ import annotations

from dataclasses import dataclass

from sbnn.hls.streams import pad8


def clog2(n: int) -> int:
    """Bits of a counter or address over ``n`` values (at least 1)."""
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class MaxPoolConfig:
    """An ``H x W`` image of ``C`` bit channels pooled by ``kh x kw`` windows (stride = kernel), PE channels a beat."""

    H: int
    W: int
    kh: int
    kw: int
    C: int
    PE: int = 1
    name: str = "binary_maxpool"

    def __post_init__(self):
        for a in ("H", "W", "kh", "kw", "C", "PE"):
            v = getattr(self, a)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{self.name}: {a} must be a positive integer, got {v!r}")
        if self.C % self.PE:
            raise ValueError(f"{self.name}: PE={self.PE} must divide NumChannels={self.C}")
        if self.H < self.kh or self.W < self.kw:
            raise ValueError(f"{self.name}: image {self.H}x{self.W} is smaller than the {self.kh}x{self.kw} window")
        if not self.name.isidentifier():
            raise ValueError(f"{self.name!r} is not a Verilog identifier")

    @property
    def CF(self) -> int:
        """Beats per pixel (channel folds)."""
        return self.C // self.PE

    @property
    def Ho(self) -> int:
        return self.H // self.kh

    @property
    def Wo(self) -> int:
        return self.W // self.kw

    @property
    def depth(self) -> int:
        """Row-buffer words (PE bits each): one per output column and channel fold."""
        return self.Wo * self.CF

    @property
    def in_beats(self) -> int:
        return self.H * self.W * self.CF

    @property
    def out_beats(self) -> int:
        return self.Ho * self.Wo * self.CF

    @property
    def tdata_width(self) -> int:
        """TDATA width of both streams (PE bits padded to a multiple of 8)."""
        return pad8(self.PE)
