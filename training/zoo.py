"""Model registry: names users type on the command line -> constructors."""

from __future__ import annotations

from sbnn.errors import UserError

from .blocks import check_block_fits
from .cnv import CNV
from .domains import WeightDomain
from .mlp import PRESETS, BinaryMLP
from .resnet import BinaryResNet
from .sparsity import binary_layers, tensor_quant

MODELS = ("tfc", "sfc", "lfc", "mlp", "cnv", "resnet")


def parse_hidden(hidden: str | tuple | list) -> tuple[int, ...]:
    if isinstance(hidden, (tuple, list)):
        widths = tuple(h for h in hidden if isinstance(h, int) and not isinstance(h, bool))
        widths = widths if len(widths) == len(hidden) else ()
    else:
        try:
            widths = tuple(int(h) for h in str(hidden).split(",") if h.strip())
        except ValueError:
            widths = ()
    if not widths or min(widths) < 1:
        raise UserError(f"--hidden must be comma-separated positive widths like 256,256,256, got '{hidden}'")
    return widths


def build_model(name: str, in_shape, num_classes: int, domain: WeightDomain, *, hidden=None, width=None,
                depth: int = 1, dropout: float = 0.0, dense_classifier: bool = False):
    """Build a model by name. ``hidden`` overrides MLP widths; ``width`` scales CNV / sets ResNet width.

    ``dense_classifier`` gives the last layer dense +-1 weights whatever the domain (the ResNet's
    classifier is full precision anyway).
    """
    head = WeightDomain("bipolar", None, domain.per_channel) if dense_classifier else None
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; choose one of: {', '.join(MODELS)}")
    if name in PRESETS or name == "mlp":
        if name == "mlp" and hidden is None:
            raise UserError("model 'mlp' needs --hidden, e.g. --hidden 256,256,256")
        widths = parse_hidden(hidden) if hidden is not None else PRESETS[name]
        model = BinaryMLP(in_shape, num_classes, widths, domain, dropout=dropout, head_domain=head)
    elif name == "cnv":
        model = CNV(in_shape, num_classes, domain, width=float(width or 1.0), head_domain=head)
    else:
        model = BinaryResNet(in_shape, num_classes, domain, width=int(width or 16), depth=depth)
    return _checked_blocks(model)


def _checked_blocks(model):
    """The model, once every block-structured layer's shape is known to be tiled by its block."""
    for layer_name, layer in binary_layers(model):
        block = getattr(tensor_quant(layer), "block", None)
        if block is not None:
            check_block_fits(layer_name, layer.weight.shape, block)
    return model
