"""Sparsity report, magnitude pruning with its schedule, and the EC budget penalty."""

import pytest
import torch
import torch.nn.functional as F

from sbnn.errors import UserError
from sbnn.training.domains import WeightDomain
from sbnn.training.ec_penalty import ec_budget_penalty, positive_share
from sbnn.training.mlp import BinaryMLP
from sbnn.training.pruning import MagnitudePruner, cubic_schedule
from sbnn.training.sparsity import binary_layers, sparsity_report


def mlp(kind="alpha-beta", ec=0.1, hidden=(32, 16)):
    torch.manual_seed(0)
    return BinaryMLP((1, 8, 8), 10, hidden, WeightDomain(kind, ec))


def test_report_counts_share_at_alpha_per_layer_and_overall():
    rep = sparsity_report(mlp("alpha-beta", 0.1))
    sizes = [64 * 32, 32 * 16, 16 * 10]
    assert [l["weights"] for l in rep["layers"]] == sizes
    for layer, n in zip(rep["layers"], sizes):
        assert layer["sparsity"] == pytest.approx(1 - round(0.1 * n) / n)
        assert isinstance(layer["alpha"], float) and isinstance(layer["beta"], float)
    expected = sum(n - round(0.1 * n) for n in sizes) / sum(sizes)
    assert rep["sparsity"] == pytest.approx(expected)
    assert rep["pruned"] == 0.0


def test_report_per_channel_lists_alpha_beta():
    torch.manual_seed(0)
    m = BinaryMLP((1, 8, 8), 10, (32,), WeightDomain("alpha-beta", 0.25, per_channel=True))
    first = sparsity_report(m)["layers"][0]
    assert len(first["alpha"]) == 32 and len(first["beta"]) == 32


def test_cubic_schedule():
    assert cubic_schedule(0.0, 0.9, 0.1, 0.5) == 0.0
    assert cubic_schedule(0.5, 0.9, 0.1, 0.5) == pytest.approx(0.9)
    assert cubic_schedule(1.0, 0.9, 0.1, 0.5) == pytest.approx(0.9)
    mid = cubic_schedule(0.3, 0.9, 0.1, 0.5)
    assert mid == pytest.approx(0.9 * (1 - 0.5**3))
    values = [cubic_schedule(p / 20, 0.9, 0.0, 1.0) for p in range(21)]
    assert values == sorted(values), "sparsity only grows"


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_magnitude_pruning_zeroes_smallest_weights(scope):
    m = mlp("bipolar", None)
    pruner = MagnitudePruner(m, 0.75, scope, start=0.0, end=0.5)
    assert pruner.step(1.0) == pytest.approx(0.75)
    rep = sparsity_report(m)
    assert rep["pruned"] == pytest.approx(0.75, abs=2e-3)
    all_w = torch.cat([l.weight.abs().flatten() for _, l in binary_layers(m)])
    for _, layer in binary_layers(m):
        q = layer.quant_weight().value.detach()
        mask = q != 0
        kept, dropped = layer.weight.abs()[mask], layer.weight.abs()[~mask]
        if scope == "layer":
            assert mask.float().mean() == pytest.approx(0.25, abs=1 / mask.numel() + 1e-6)
            assert kept.min() >= dropped.max()
        else:
            thr = torch.kthvalue(all_w, int(round(0.75 * all_w.numel()))).values
            assert (kept > thr).all() and (dropped <= thr).all()


def test_pruning_errors():
    with pytest.raises(UserError, match="scope"):
        MagnitudePruner(mlp(), 0.5, "row")
    with pytest.raises(UserError, match=r"\[0, 1\)"):
        MagnitudePruner(mlp(), 1.0)


def test_ec_penalty_is_self_scaled_and_vanishes_under_budget():
    m = mlp("alpha-beta-learned", 0.1)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    loss = F.cross_entropy(m(x), y)
    p = float(positive_share(m).detach())
    assert 0.3 < p < 0.7, "fresh latent weights are about half positive"
    gamma = 0.04
    penalty, p2 = ec_budget_penalty(m, loss, ec=0.1, gamma=gamma)
    assert p2 == pytest.approx(p)
    # lambda * h = gamma L / (1 - gamma), with a gradient that pushes latent weights down
    assert float(penalty.detach()) == pytest.approx(gamma * float(loss.detach()) / (1 - gamma), rel=1e-5)
    penalty.backward()
    grads = torch.cat([l.weight.grad.flatten() for _, l in binary_layers(m)])
    assert (grads >= 0).all() and grads.sum() > 0
    zero, _ = ec_budget_penalty(m, loss, ec=0.9, gamma=gamma)
    assert float(zero) == 0.0
    none, _ = ec_budget_penalty(m, loss, ec=0.1, gamma=0.0)
    assert float(none) == 0.0
