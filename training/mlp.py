"""TFC / SFC / LFC: FINN's bnn_pynq fully connected topologies, any width and depth."""

from __future__ import annotations

import math

from brevitas.nn import QuantLinear
from torch import nn

from .domains import WeightDomain
from .layers import InputQuant, TensorNorm, bipolar_act

PRESETS = {"tfc": (64, 64, 64), "sfc": (256, 256, 256), "lfc": (1024, 1024, 1024)}


class BinaryMLP(nn.Module):
    """input sign -> [binary FC -> BN -> sign] * len(hidden) -> binary FC -> TensorNorm.

    ``head_domain`` overrides the classifier's weight domain (see ``TrainConfig.dense_classifier``).
    """

    def __init__(self, in_shape, num_classes: int, hidden=(256, 256, 256), domain: WeightDomain = WeightDomain(),
                 in_bit_width: int = 1, dropout: float = 0.0, head_domain: WeightDomain | None = None):
        super().__init__()
        in_features = math.prod(in_shape)
        self.input_quant = InputQuant(in_bit_width)
        layers: list[nn.Module] = []
        for width in hidden:
            if dropout:
                layers.append(nn.Dropout(dropout))
            layers += [QuantLinear(in_features, width, bias=False, **domain.quant_kwargs()),
                       nn.BatchNorm1d(width), bipolar_act()]
            in_features = width
        head = head_domain or domain
        layers += [QuantLinear(in_features, num_classes, bias=False, **head.quant_kwargs()), TensorNorm()]
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(self.input_quant(x.flatten(1)))
