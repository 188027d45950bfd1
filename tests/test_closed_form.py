"""Property tests: the closed form is the least-squares optimum, and its special cases reduce correctly."""

import itertools

import numpy as np
import pytest
import torch

from sbnn.training.closed_form import closed_form_alpha_beta, ec_to_k


def sse(w, b, alpha, beta):
    q = alpha + (beta - alpha) * b
    return float(((w - q) ** 2).sum())


def brute_force(w: np.ndarray, k: int, alpha_zero: bool = False) -> float:
    """Smallest squared error over every mask with exactly k ones (alpha, beta = optimal means)."""
    n, best = w.size, np.inf
    for ones in itertools.combinations(range(n), k):
        b = np.zeros(n)
        b[list(ones)] = 1
        beta = w[b == 1].mean()
        alpha = 0.0 if alpha_zero else w[b == 0].mean()
        best = min(best, sse(w, b, alpha, beta))
    return best


def random_tensors(count, seed):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(3, 11))
        kind = rng.integers(3)
        if kind == 0:
            w = rng.normal(size=n)
        elif kind == 1:
            w = rng.laplace(size=n) + rng.normal() * 0.5   # skewed / shifted
        else:
            w = rng.uniform(-1, 1, size=n) ** 3
        yield w, float(rng.uniform(0.05, 0.95))


@pytest.mark.parametrize("alpha_zero", [False, True], ids=["alpha-beta", "zero-beta"])
def test_closed_form_matches_brute_force(alpha_zero):
    checked = 0
    for w, ec in random_tensors(120, seed=1 + alpha_zero):
        k = ec_to_k(ec, w.size)
        b, alpha, beta = closed_form_alpha_beta(torch.tensor(w), ec, alpha_zero=alpha_zero)
        b = b.numpy()
        assert int(b.sum()) == k, "the mask must have exactly k = round(EC n) ones"
        got = sse(w, b, float(alpha), float(beta))
        assert got == pytest.approx(brute_force(w, k, alpha_zero), rel=1e-9, abs=1e-12)
        checked += 1
    assert checked >= 100


def test_per_channel_rows_are_independent():
    torch.manual_seed(0)
    w = torch.randn(5, 3, 3, 3)
    b, alpha, beta = closed_form_alpha_beta(w, 0.25, per_channel=True)
    assert alpha.shape == (5, 1) and b.shape == w.shape
    for c in range(5):
        bc, ac, bec = closed_form_alpha_beta(w[c:c + 1], 0.25)
        assert torch.equal(bc[0], b[c]) and torch.allclose(ac[0], alpha[c]) and torch.allclose(bec[0], beta[c])


def test_threshold_at_zero_gives_means_of_each_sign():
    w = torch.tensor([-0.9, -0.3, 0.0, 0.2, 0.5, 1.1])
    b, alpha, beta = closed_form_alpha_beta(w, None)
    assert b.tolist() == [0, 0, 0, 1, 1, 1]
    assert float(alpha) == pytest.approx((-0.9 - 0.3 + 0.0) / 3)
    assert float(beta) == pytest.approx((0.2 + 0.5 + 1.1) / 3)


def test_symmetric_reduces_to_xnor_net_scale():
    torch.manual_seed(3)
    w = torch.randn(4, 16)
    b, alpha, beta = closed_form_alpha_beta(w, symmetric=True, per_channel=True)
    assert torch.allclose(beta, w.abs().mean(dim=1, keepdim=True))
    assert torch.equal(alpha, -beta)
    assert torch.equal(b, (w > 0).float())
    # and it is the least-squares optimum among alpha = -beta for this sign pattern
    s = torch.sign(w)
    for scale in (0.9, 1.1):
        worse = ((w - scale * beta * s) ** 2).sum()
        assert ((w - beta * s) ** 2).sum() < worse


def test_symmetric_weights_large_ec_picks_top_k():
    # For EC = 1/2 on a symmetric set both sides tie; the top-k side is chosen deterministically.
    w = torch.tensor([-2.0, -1.0, 1.0, 2.0])
    b, alpha, beta = closed_form_alpha_beta(w, 0.5)
    assert b.tolist() == [0, 0, 1, 1] and float(alpha) == -1.5 and float(beta) == 1.5


def test_zero_beta_has_alpha_exactly_zero():
    w = torch.randn(64)
    _, alpha, _ = closed_form_alpha_beta(w, 0.1, alpha_zero=True)
    assert float(alpha) == 0.0


@pytest.mark.parametrize("ec", [0.0, 1.0, -0.1, 1.5])
def test_ec_outside_open_interval_is_rejected(ec):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        closed_form_alpha_beta(torch.randn(10), ec)
