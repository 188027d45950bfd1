"""Edge and activation layers following FINN's bnn_pynq conventions.

* Hidden activations are bipolar signs (Brevitas binary quantizer, STE with
  hardtanh clipping): they export to QONNX ``BipolarQuant`` and FINN turns them
  into thresholds.
* The input is mapped to [-1, 1] (``2x - 1``) and quantized: to 1 bit (sign)
  for the MLPs, to 8 bits for CNV, exactly as bnn_pynq does, so FINN keeps it
  as an input thresholding layer.
* The classifier has binary weights and no activation, followed by
  :class:`TensorNorm`, a scalar affine normalisation that FINN absorbs.
"""

from __future__ import annotations

import torch
from brevitas.core.restrict_val import RestrictValueType
from brevitas.nn import QuantIdentity
from brevitas.quant import SignedBinaryActPerTensorConst
from brevitas.quant.scaled_int import Int8ActPerTensorFloatMinMaxInit
from torch import nn

from .distributed import global_moments, syncing_statistics


class BipolarActQuant(SignedBinaryActPerTensorConst):
    """sign(x) in {-1, +1}; backward: identity for |x| <= 1 (hardtanh STE)."""
    scaling_const = 1.0


class InputActQuant(Int8ActPerTensorFloatMinMaxInit):
    """Multi-bit input quantizer on [-1, 1) (bnn_pynq's CommonActQuant for >1 bit)."""
    min_val = -1.0
    max_val = 1.0 - 2.0**-7
    restrict_scaling_type = RestrictValueType.LOG_FP


def bipolar_act() -> QuantIdentity:
    return QuantIdentity(act_quant=BipolarActQuant, return_quant_tensor=False)


class InputQuant(nn.Module):
    """Pixels in [0, 1] -> 2x - 1 -> ``bit_width``-bit quantization (1 bit = sign)."""

    def __init__(self, bit_width: int = 1):
        super().__init__()
        self.bit_width = bit_width
        if bit_width == 1:
            self.quant = bipolar_act()
        else:
            self.quant = QuantIdentity(act_quant=InputActQuant, bit_width=bit_width, return_quant_tensor=False)

    def forward(self, x):
        return self.quant(2.0 * x - 1.0)


class TensorNorm(nn.Module):
    """Scalar batch normalisation of the whole tensor: ``(x - mean) / sqrt(var + eps) * w + b``.

    One mean, variance, weight and bias for all logits, tracked with momentum
    like BatchNorm. A positive scalar affine does not change the argmax, which
    is why FINN can absorb it into the final TopK.
    """

    def __init__(self, eps: float = 1e-4, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_var", torch.ones(1))

        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self):
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x):
        if self.training:
            if syncing_statistics():   # data-parallel: the global batch's statistics (see .distributed)
                mean, var, n = global_moments(x, list(range(x.dim())))
                unbiased = var * n / max(n - 1, 1)
            else:
                mean, var, unbiased = x.mean(), x.var(unbiased=False), x.var(unbiased=True)
            with torch.no_grad():
                self.num_batches_tracked += 1
                # momentum None: cumulative average, as in torch's BatchNorm
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach().reshape(1))
                self.running_var.mul_(1 - m).add_(m * unbiased.detach().reshape(1))
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
