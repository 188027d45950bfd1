"""CNV: FINN's bnn_pynq convolutional topology (3x3 valid convs, 2 max-pools, 2 FC)."""

from __future__ import annotations

from brevitas.nn import QuantConv2d, QuantLinear
from torch import nn

from sbnn.errors import UserError

from .domains import WeightDomain
from .layers import InputQuant, TensorNorm, bipolar_act

# (output channels, max-pool after) per conv, as in bnn_pynq's CNV.
CONVS = ((64, False), (64, True), (128, False), (128, True), (256, False), (256, False))
FCS = (512, 512)


class CNV(nn.Module):
    """Binary CNV. ``width`` scales every channel count; the first conv sees 8-bit input."""

    def __init__(self, in_shape, num_classes: int, domain: WeightDomain = WeightDomain(), width: float = 1.0,
                 in_bit_width: int = 8, head_domain: WeightDomain | None = None):
        super().__init__()
        c, h, w = in_shape
        self.input_quant = InputQuant(in_bit_width)
        layers: list[nn.Module] = []
        for out_ch, pool in CONVS:
            out_ch = max(1, round(out_ch * width))
            layers += [QuantConv2d(c, out_ch, 3, bias=False, **domain.quant_kwargs()), nn.BatchNorm2d(out_ch),
                       bipolar_act()]
            c, h, w = out_ch, h - 2, w - 2
            if pool:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise UserError(f"CNV needs inputs of at least 32x32 pixels, got {in_shape[1]}x{in_shape[2]}; "
                                "use an MLP (tfc/sfc/lfc) or a CIFAR data set")
        self.conv = nn.Sequential(*layers)
        fc: list[nn.Module] = []
        in_f = c * h * w
        for out_f in FCS:
            out_f = max(1, round(out_f * width))
            fc += [QuantLinear(in_f, out_f, bias=False, **domain.quant_kwargs()), nn.BatchNorm1d(out_f), bipolar_act()]
            in_f = out_f
        fc += [QuantLinear(in_f, num_classes, bias=False, **(head_domain or domain).quant_kwargs()), TensorNorm()]
        self.fc = nn.Sequential(*fc)

    def forward(self, x):
        return self.fc(self.conv(self.input_quant(x)).flatten(1))
