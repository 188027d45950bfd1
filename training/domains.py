"""Which binary weight domain a layer uses, as one typed config, mapped to a Brevitas quantizer."""

from __future__ import annotations

from dataclasses import dataclass

from sbnn.errors import UserError

from . import weight_quant as wq

DOMAINS = {
    "alpha-beta": "{alpha, beta} by closed-form least squares at a target EC",
    "alpha-beta-learned": "{alpha, beta} with learned tau, phi and the EC budget penalty",
    "zero-beta": "{0, beta} by closed form at a target EC",
    "bipolar": "classic +-1 weights (dense; combine with magnitude pruning)",
}


@dataclass(frozen=True)
class WeightDomain:
    """Weight domain of the binary layers.

    ``ec`` is the expected-connections target (share of b = 1): exact for the
    closed-form domains, a budget for the learned one, unused for +-1.
    ``block`` (rows, cols) makes the mask block-structured (``blocks.py``); per
    tensor, so not with ``per_channel``, whose rows would each pick their own blocks.
    """

    kind: str = "alpha-beta"
    ec: float | None = 0.1
    per_channel: bool = False
    block: tuple[int, int] | None = None

    def __post_init__(self):
        if self.kind not in DOMAINS:
            raise UserError(f"unknown weight domain '{self.kind}'; choose one of: {', '.join(DOMAINS)}")
        if self.ec is not None and not 0.0 < self.ec < 1.0:
            raise UserError(f"expected connections (EC) must be in (0, 1), got {self.ec}; e.g. --ec 0.1 for 10% connections")
        if self.kind in ("alpha-beta", "zero-beta", "alpha-beta-learned") and self.ec is None:
            raise UserError(f"weight domain '{self.kind}' needs a target EC in (0, 1), e.g. --ec 0.1")
        if self.block is not None and self.kind == "bipolar":
            raise UserError("--block shapes the {alpha, beta} mask; the bipolar domain has none (use alpha-beta, "
                            "zero-beta or alpha-beta-learned)")
        if self.block is not None and self.per_channel:
            raise UserError("--block picks blocks per tensor and does not combine with --per-channel; drop one")

    def quant_kwargs(self) -> dict:
        """Keyword arguments for QuantLinear / QuantConv2d selecting this domain."""
        kw = self._domain_kwargs()
        if self.block is not None:
            kw["weight_block"] = tuple(self.block)
        return kw

    def _domain_kwargs(self) -> dict:
        if self.kind == "alpha-beta":
            q = wq.AlphaBetaPerChannelWeightQuant if self.per_channel else wq.AlphaBetaWeightQuant
            return {"weight_quant": q, "weight_target_ec": self.ec}
        if self.kind == "zero-beta":
            return {"weight_quant": wq.ZeroBetaWeightQuant, "weight_target_ec": self.ec,
                    "weight_per_channel": self.per_channel}
        if self.kind == "bipolar":
            return {"weight_quant": wq.BipolarWeightQuant, "weight_per_channel": self.per_channel}
        return {"weight_quant": wq.LearnedAlphaBetaWeightQuant}

    @property
    def uses_ec_penalty(self) -> bool:
        return self.kind == "alpha-beta-learned"
