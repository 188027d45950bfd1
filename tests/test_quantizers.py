"""The Brevitas quantizers: two levels, exact EC, clipped STE, learned tau/phi, in Linear and Conv."""

import pytest
import torch
from brevitas.nn import QuantConv2d, QuantLinear

from sbnn.errors import UserError
from sbnn.training.domains import WeightDomain
from sbnn.training.weight_quant import (AlphaBetaPerChannelWeightQuant, AlphaBetaWeightQuant, BipolarWeightQuant,
                                        LearnedAlphaBetaWeightQuant, ZeroBetaWeightQuant)

CASES = [
    (AlphaBetaWeightQuant, {"weight_target_ec": 0.1}),
    (AlphaBetaPerChannelWeightQuant, {"weight_target_ec": 0.25}),
    (ZeroBetaWeightQuant, {"weight_target_ec": 0.1}),
    (BipolarWeightQuant, {}),
    (LearnedAlphaBetaWeightQuant, {}),
]


def levels_per_row(q):
    return [torch.unique(row) for row in q.reshape(q.shape[0], -1)]


@pytest.mark.parametrize("quant,kwargs", CASES, ids=[c[0].__name__ for c in CASES])
@pytest.mark.parametrize("layer", ["linear", "conv"])
def test_two_levels_and_affine_1bit_encoding(quant, kwargs, layer):
    torch.manual_seed(0)
    if layer == "linear":
        m = QuantLinear(40, 8, bias=False, weight_quant=quant, **kwargs)
    else:
        m = QuantConv2d(4, 8, 3, bias=False, weight_quant=quant, **kwargs)
    qt = m.quant_weight()
    for row in levels_per_row(qt.value.detach()):
        assert row.numel() <= 2
    # Brevitas' integer view is exactly the mask bit b in {0, 1}: q = scale * (b - zero_point)
    b = (qt.value / qt.scale + qt.zero_point).detach()
    assert torch.allclose(b, b.round(), atol=1e-5) and set(b.round().unique().tolist()) <= {0.0, 1.0}
    assert float(qt.bit_width) == 1.0 and not qt.signed
    if "weight_target_ec" in kwargs:
        ec = kwargs["weight_target_ec"]
        per_row = b.round().reshape(8, -1).mean(dim=1)
        n = per_row.new_tensor(b[0].numel() if quant is AlphaBetaPerChannelWeightQuant else b.numel())
        if quant is AlphaBetaPerChannelWeightQuant:
            assert torch.allclose(per_row, torch.round(ec * n) / n)
        else:
            assert float(b.round().mean()) == pytest.approx(round(ec * b.numel()) / b.numel())
    y = m(torch.randn(2, 40) if layer == "linear" else torch.randn(2, 4, 6, 6))
    assert torch.isfinite(y).all()


def test_zero_beta_alpha_is_zero():
    m = QuantLinear(50, 4, bias=False, weight_quant=ZeroBetaWeightQuant, weight_target_ec=0.2)
    q = m.quant_weight().value.detach()
    assert (q == 0).float().mean() == pytest.approx(0.8)


def test_straight_through_gradient_is_clipped():
    m = QuantLinear(6, 1, bias=False, weight_quant=AlphaBetaWeightQuant, weight_target_ec=0.5)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[-2.0, -0.5, -0.1, 0.1, 0.5, 2.0]]))
    m(torch.ones(1, 6)).sum().backward()
    g = m.weight.grad[0]
    assert g[0] == 0 and g[5] == 0, "|w| > clip (1.5) gets no gradient"
    assert (g[1:5] == 1).all(), "inside the clip range the STE passes the gradient unchanged"


def test_learned_tau_phi_receive_exact_gradients():
    m = QuantLinear(4, 1, bias=False, weight_quant=LearnedAlphaBetaWeightQuant)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[-0.3, 0.2, 0.7, -0.1]]))
    tq = m.weight_quant.tensor_quant
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    m(x).sum().backward()
    sign = torch.tensor([-1.0, 1.0, 1.0, -1.0])
    assert float(tq.tau.grad) == pytest.approx(float((sign * x).sum()))   # d/dtau of sum x (tau s + phi)
    assert float(tq.phi.grad) == pytest.approx(float(x.sum()))
    q = m.quant_weight().value.detach()[0]
    assert torch.allclose(q, 1.0 * sign + 0.0), "initial tau = 1, phi = 0 is the classic +-1 network"


def test_weight_domain_errors_are_one_line():
    with pytest.raises(UserError, match="unknown weight domain 'ternary'"):
        WeightDomain("ternary")
    for bad in (0.0, 1.0, 1.2, -0.5):
        with pytest.raises(UserError, match=r"must be in \(0, 1\)"):
            WeightDomain("alpha-beta", bad)
