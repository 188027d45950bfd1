"""Freeze a trained model for export: exact {alpha, beta} levels and centred thresholds.

After training, each binary layer's weights are ``w = alpha + (beta - alpha) b``
with float ``alpha``, ``beta`` (per layer or per output channel). Integer
hardware needs the ratio ``rho = alpha / (beta - alpha)`` as an exact fixed-point
value ``R / 2**k``. Freezing, per binary layer:

1. take ``(b, alpha, beta)`` from the layer's quantizer; make the scale
   ``s = beta - alpha`` positive (``b -> 1 - b`` swaps alpha and beta);
2. snap ``rho`` to ``R / 2**k`` (``k = frac_bits``), then reduce the fraction
   (a common factor 2 of all R lowers ``k``; +-1 ends at ``R = -1, k = 1``);
3. write the weights as ``w = q * (R + 2**k b)`` with the quantum
   ``q = s / 2**k`` rounded to few enough significant bits that every partial
   sum of ``+-w`` is exactly representable in float32: PyTorch, onnxruntime and
   FINN then compute the same layer outputs ``y = q * n`` (n an integer)
   whatever their summation order;
4. swap the quantizer for :class:`FrozenBinaryQuant`, which returns exactly those
   levels (Brevitas then exports a weight ``Quant`` node: 1-bit unsigned,
   scale ``2**k q``, zero point ``-R / 2**k``);
5. centre the decision threshold of the following BatchNorm + sign: the integer
   ``n`` of a neuron has a fixed parity, so a threshold halfway between two
   reachable values (an integer of the other parity) decides every input the
   same way, with a margin of a whole quantum, in every float engine. BatchNorm's
   mean becomes ``q * m`` and its bias 0 (weight and variance keep the sign and
   the scale); the decisions equal those of the unfrozen BatchNorm for every
   reachable ``n`` (up to float rounding of the original threshold).

The frozen model's eval-mode predictions are the reference of the
bit-exactness chain (PyTorch -> QONNX -> FINN hardware graph).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sbnn.errors import UserError
from sbnn.training.closed_form import expand_to
from sbnn.training.sparsity import binary_layers
from sbnn.training.weight_quant import BinaryDomainQuant

DEFAULT_FRAC_BITS = 8
FLOAT32_MANTISSA = 24


class FrozenBinaryQuant(BinaryDomainQuant):
    """Fixed levels ``alpha = q R``, ``beta = q (R + 2**k)`` per row; ``b`` = weight above the midpoint.

    Returns Brevitas' tuple with bit width 2 (Brevitas refuses to export a 1-bit
    quantizer with a zero point); the exporter rewrites the Quant node's bit
    width to 1, which gives the same values since ``b`` is 0 or 1.
    """

    def __init__(self, alpha: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor):
        super().__init__(clip=float("inf"))
        self.register_buffer("alpha", alpha.clone())
        self.register_buffer("scale", scale.clone())
        self.register_buffer("zero_point", zero_point.clone())
        self.bit_width_value = torch.tensor(2.0)

    def levels(self, w):
        mid = expand_to(self.alpha + self.scale / 2, w)
        b = (w > mid).to(w.dtype)
        return b, self.alpha, self.alpha + self.scale

    def forward(self, w):
        b, alpha, _ = self.levels(w)
        scale = expand_to(self.scale, w)
        q = expand_to(alpha, w) + scale * b
        return q.detach(), scale, expand_to(self.zero_point, w), self.bit_width_value


class FrozenTernaryQuant(BinaryDomainQuant):
    """Fixed ternary levels ``{-c, 0, +c}`` per row: a magnitude-pruned +-1 layer (``t = sign * kept``).

    Exported as a 2-bit Quant node of scale ``c`` and zero point 0; the exporter marks it signed and narrow
    (codes -1, 0, +1), and the compile lowers its columns to a mask plus a sign per kept weight."""

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor):
        super().__init__(clip=float("inf"))
        self.register_buffer("codes", codes.clone())
        self.register_buffer("scale", scale.clone())
        self.bit_width_value = torch.tensor(2.0)

    def levels(self, w):
        scale = expand_to(self.scale, w)
        return (self.codes != 0).to(w.dtype), -scale, scale

    def forward(self, w):
        scale = expand_to(self.scale, w)
        return (self.codes.to(w.dtype) * scale).detach(), scale, torch.zeros_like(scale), self.bit_width_value


@dataclass
class FrozenLayer:
    """What freezing fixed for one binary layer (rows = output channels or 1)."""

    name: str
    frac_bits: int             # k after reduction
    alpha_num: np.ndarray      # R per row (int64)
    quantum: np.ndarray        # q per row (float64, exactly a float32)
    flipped: np.ndarray        # rows whose b was inverted to make the scale positive
    mantissa_bits: int
    centred: int = 0           # neurons whose BatchNorm threshold was centred
    moved: int = 0             # of those, neurons whose threshold crossed a reachable value
    extra: dict = field(default_factory=dict)


def _round_mantissa(x: np.ndarray, bits: int) -> np.ndarray:
    """Round positive floats to ``bits`` significant bits (result exactly a float32)."""
    e = np.floor(np.log2(x))
    unit = np.exp2(e - (bits - 1))
    return np.round(x / unit) * unit


def _following_batchnorm(model: nn.Module, layer: nn.Module) -> nn.Module | None:
    """The BatchNorm that directly follows ``layer`` in a Sequential (Dropout skipped), else None."""
    for mod in model.modules():
        if not isinstance(mod, nn.Sequential):
            continue
        kids = list(mod.children())
        for i, kid in enumerate(kids):
            if kid is layer:
                for nxt in kids[i + 1:]:
                    if isinstance(nxt, nn.Dropout):
                        continue
                    return nxt if isinstance(nxt, (nn.BatchNorm1d, nn.BatchNorm2d)) else None
                return None
    return None


@torch.no_grad()
def _freeze_layer(name: str, layer: nn.Module, frac_bits: int) -> tuple[FrozenLayer, np.ndarray]:
    tq = layer.weight_quant.tensor_quant
    w = layer.weight.detach()
    b, alpha, beta = tq.levels(w)
    rows = alpha.shape[0]
    b = b.reshape(w.shape[0], -1).double()
    alpha = alpha.double().reshape(rows, 1)
    beta = beta.double().reshape(rows, 1)
    pm = tq.prune_mask
    if pm is not None and not bool(pm.bool().all()):
        if bool(torch.allclose(alpha, -beta)) and not bool((alpha == 0).any()):
            return _freeze_ternary(name, layer, b, beta, pm.reshape(w.shape[0], -1).double())
        if not bool((alpha == 0).all()):
            raise UserError(f"layer '{name}' has magnitude-pruned weights, i.e. three levels {{0, alpha, beta}}, "
                            "which one XNOR-popcount mask cannot represent; export supports pruning only in the "
                            "{0, beta} domain (--domain zero-beta)")
        b = b * pm.reshape(w.shape[0], -1).double()
    s = beta - alpha
    flip = (s < 0).reshape(-1)
    if bool((s.abs() < 1e-12).any()):
        raise UserError(f"layer '{name}' has alpha == beta (all its weights are equal); it carries no information "
                        "and cannot be exported as a binary layer; retrain or remove it")
    # b -> 1 - b swaps alpha and beta so that the scale is positive.
    alpha_p = torch.where(flip.reshape(-1, 1), beta, alpha)
    s = s.abs()
    rho = (alpha_p / s).reshape(-1).numpy()
    r = np.round(rho * 2.0**frac_bits).astype(np.int64)
    k = frac_bits
    while k > 0 and np.all(r % 2 == 0):
        r //= 2
        k -= 1
    mw = b.shape[1]
    coef_max = np.maximum(np.abs(r), np.abs(r + (1 << k)))
    nmax = int(mw * coef_max.max())
    mbits = int(math.floor(math.log2(2.0**FLOAT32_MANTISSA / nmax))) if nmax > 0 else FLOAT32_MANTISSA
    if mbits < 1:
        raise UserError(f"layer '{name}': {mw} inputs with alpha/(beta-alpha) at {k} fraction bits do not fit "
                        f"float32 exactly; lower --frac-bits (now {frac_bits})")
    mbits = min(mbits, FLOAT32_MANTISSA)
    q = _round_mantissa(s.reshape(-1).numpy() / 2.0**k, mbits)
    # Rebuild the layer: w = q (R + 2**k b') per output channel.
    flip_rows = flip if rows > 1 else flip.expand(w.shape[0])
    bb = torch.where(flip_rows.reshape(-1, 1), 1 - b, b)
    qt = torch.as_tensor(q).reshape(-1, 1)
    rt = torch.as_tensor(r, dtype=torch.float64).reshape(-1, 1)
    new_w = qt * (rt + (2.0**k) * bb)
    layer.weight.data = new_w.reshape(w.shape).to(w.dtype)
    alpha_t = (qt * rt).float()
    scale_t = (qt * 2.0**k).float()
    zp = (-rt / 2.0**k).float()
    frozen = FrozenBinaryQuant(alpha_t, scale_t, zp)
    layer.weight_quant.tensor_quant = frozen
    assert torch.equal(frozen(layer.weight)[0], layer.weight.data), "frozen levels are not exact"
    # Integer coefficients per output channel and the quantum per output channel.
    coef = (rt + (2.0**k) * bb).numpy().astype(np.int64)
    info = FrozenLayer(name, k, r, q, flip.numpy().copy(), mbits)
    info.extra["q_raw"] = (s.reshape(-1).numpy() / 2.0**k)
    info.extra["nmax"] = nmax
    return info, coef


@torch.no_grad()
def _freeze_ternary(name: str, layer: nn.Module, b: torch.Tensor, beta: torch.Tensor,
                    kept: torch.Tensor) -> tuple[FrozenLayer, np.ndarray]:
    """A magnitude-pruned +-1 layer (levels {-c, +c} with c = |beta| per row, pruned weights 0): the codes
    ``t = kept * (2 b - 1) * sign(beta)`` in {-1, 0, +1} and ``w = q t``, with the quantum ``q`` (= c) rounded
    like the binary layers' so that every partial sum of ``+-w`` is exact in float32 (``n = sum t x`` is an
    integer of at most MW). R = 0, k = 0: the {0, beta} arithmetic with a sign per kept weight."""
    codes = kept * (2.0 * b - 1.0) * torch.sign(beta)
    c = beta.abs().reshape(-1).numpy()
    mw = b.shape[1]
    mbits = min(FLOAT32_MANTISSA, int(math.floor(math.log2(2.0**FLOAT32_MANTISSA / mw))))
    q = _round_mantissa(c, mbits)
    w = layer.weight
    rows = q.shape[0]
    qt = torch.as_tensor(q).reshape(-1, 1)
    layer.weight.data = (qt * codes).reshape(w.shape).to(w.dtype)
    frozen = FrozenTernaryQuant(codes.reshape(w.shape).to(w.dtype), qt.float())
    layer.weight_quant.tensor_quant = frozen
    assert torch.equal(frozen(layer.weight)[0], layer.weight.data), "frozen ternary levels are not exact"
    info = FrozenLayer(name, 0, np.zeros(rows, dtype=np.int64), q, np.zeros(rows, dtype=bool), mbits)
    info.extra["q_raw"] = c
    info.extra["nmax"] = mw
    info.extra["ternary"] = True
    return info, codes.numpy().astype(np.int64)


@torch.no_grad()
def _centre_batchnorm(bn: nn.Module, info: FrozenLayer, coef: np.ndarray) -> None:
    """Move the BN + sign decision boundary of every neuron halfway between two reachable n."""
    out = coef.shape[0]
    q_raw = np.broadcast_to(info.extra["q_raw"], (out,)).astype(np.float64)
    q = np.broadcast_to(info.quantum, (out,)).astype(np.float64)
    nmax = info.extra["nmax"]
    mean = bn.running_mean.double().numpy()
    var = bn.running_var.double().numpy()
    g = (bn.weight.double().numpy() if bn.weight is not None else np.ones(out))
    beta = (bn.bias.double().numpy() if bn.bias is not None else np.zeros(out))
    sd = np.sqrt(var + bn.eps)
    # for the conv case coef rows are output channels with all kernel taps flattened
    parity = coef.sum(axis=1) % 2
    new_mean = np.empty(out)
    new_g = g.copy()
    moved = 0
    for j in range(out):
        p = int(parity[j])
        if g[j] == 0:
            # constant decision sign(beta) (+1 when beta >= 0): put the threshold outside the range
            m = -(nmax + 1) if beta[j] >= 0 else nmax + 1
            if (m - p) % 2 == 0:
                m += -1 if beta[j] >= 0 else 1
            new_g[j] = 1.0
        else:
            t = (mean[j] - beta[j] * sd[j] / g[j]) / q_raw[j]
            t = float(np.clip(t, -(nmax + 4), nmax + 4))
            if g[j] > 0:
                # +1 iff n >= t: smallest reachable n >= t is g*, threshold g* - 1
                gs = math.ceil(t)
                if (gs - p) % 2:
                    gs += 1
                m = gs - 1
            else:
                # +1 iff n <= t: largest reachable n <= t is g_*, threshold g_* + 1
                gs = math.floor(t)
                if (gs - p) % 2:
                    gs -= 1
                m = gs + 1
            if abs(m - t) >= 1:
                moved += 1
        new_mean[j] = q[j] * m
    bn.running_mean.copy_(torch.as_tensor(new_mean, dtype=bn.running_mean.dtype))
    if bn.weight is not None:
        bn.weight.copy_(torch.as_tensor(new_g, dtype=bn.weight.dtype))
    if bn.bias is not None:
        bn.bias.zero_()
    info.centred = out
    info.moved = moved


@torch.no_grad()
def freeze_model(model: nn.Module, frac_bits: int = DEFAULT_FRAC_BITS) -> list[FrozenLayer]:
    """Freeze every binary layer of ``model`` in place (see module docstring); returns what was fixed."""
    if not 0 <= frac_bits <= 16:
        raise UserError(f"--frac-bits must be in 0..16, got {frac_bits}")
    layers = binary_layers(model)
    if not layers:
        raise UserError("the model has no binary-domain layers to export")
    model.eval()
    infos = []
    for name, layer in layers:
        if isinstance(layer.weight_quant.tensor_quant, (FrozenBinaryQuant, FrozenTernaryQuant)):
            raise UserError(f"layer '{name}' is already frozen")
        info, coef = _freeze_layer(name, layer, frac_bits)
        bn = _following_batchnorm(model, layer)
        if bn is not None:
            _centre_batchnorm(bn, info, coef)
        infos.append(info)
    return infos
