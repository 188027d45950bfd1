"""A small ResNet-style binary network, laid out as the SBNN reference code does.

The first conv, the 1x1 downsampling shortcuts and the final classifier stay
full precision; every 3x3 conv inside a block has binary weights and sees
bipolar (sign) activations.
"""

from __future__ import annotations

from brevitas.nn import QuantConv2d
from torch import nn

from .domains import WeightDomain
from .layers import bipolar_act


class BinaryBasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, domain: WeightDomain):
        super().__init__()
        q = domain.quant_kwargs()
        self.act_in = bipolar_act()
        self.conv1 = QuantConv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False, **q)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act_mid = bipolar_act()
        self.conv2 = QuantConv2d(c_out, c_out, 3, padding=1, bias=False, **q)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.bn1(self.conv1(self.act_in(x)))
        y = self.bn2(self.conv2(self.act_mid(y)))
        return y + self.shortcut(x)


class BinaryResNet(nn.Module):
    """``depth`` blocks per stage, three stages of ``width``, 2x, 4x channels."""

    def __init__(self, in_shape, num_classes: int, domain: WeightDomain = WeightDomain(), width: int = 16,
                 depth: int = 1):
        super().__init__()
        c = in_shape[0]
        self.stem = nn.Sequential(nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        blocks, c = [], width
        for stage, mult in enumerate((1, 2, 4)):
            for i in range(depth):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BinaryBasicBlock(c, width * mult, stride, domain))
                c = width * mult
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(2.0 * x - 1.0)))
