"""Block-structured {alpha, beta} masks (``--block RxC``): closed form, learned scheme, config, a tiny train."""

import itertools
import json

import numpy as np
import pytest
import torch

from sbnn.cli import main
from sbnn.errors import UserError
from sbnn.export.qonnx_export import export_checkpoint
from sbnn.hls.sparse_mvau.estimates import cycles_per_frame_of
from sbnn.training.blocks import block_sums, hw_matrix, is_block_constant, parse_block
from sbnn.training.checkpoint import model_from_checkpoint
from sbnn.training.closed_form import closed_form_alpha_beta, closed_form_block_alpha_beta, ec_to_k
from sbnn.training.config import TrainConfig
from sbnn.training.domains import WeightDomain
from sbnn.training.ec_penalty import positive_share
from sbnn.training.sparsity import binary_layers, layer_levels
from sbnn.training.weight_quant import ClosedFormAlphaBetaQuant, LearnedTauPhiQuant
from sbnn.training.zoo import build_model


def sse(w, b, alpha, beta):
    return float(((w - (alpha + (beta - alpha) * b)) ** 2).sum())


@pytest.mark.parametrize("shape,block", [((16, 48), (4, 8)), ((8, 6, 3, 3), (2, 3))], ids=["linear", "conv"])
@pytest.mark.parametrize("ec", [0.1, 0.3, 0.5])
def test_mask_is_block_constant_with_ec_to_block_granularity(shape, block, ec):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    b, alpha, beta = closed_form_block_alpha_beta(w, ec, block)
    assert is_block_constant(b, block)
    n_blocks = block_sums(w, block).numel()
    assert int(b.sum()) == ec_to_k(ec, n_blocks) * block[0] * block[1]
    assert alpha.shape == beta.shape == (1, 1)
    assert float(beta) == pytest.approx(float(w[b == 1].mean()), rel=1e-5)
    assert float(alpha) == pytest.approx(float(w[b == 0].mean()), rel=1e-5)


def test_conv_block_is_output_channels_by_input_channels_at_one_tap():
    """FINN's im2col order (kh, kw, cin): a block spans R output and C input channels at one kernel position."""
    w = torch.randn(4, 6, 3, 3, generator=torch.Generator().manual_seed(0))
    b, _, _ = closed_form_block_alpha_beta(w, 0.25, (2, 3))
    for o, c, i, j in itertools.product(range(0, 4, 2), range(0, 6, 3), range(3), range(3)):
        tile = b[o:o + 2, c:c + 3, i, j]
        assert bool((tile == tile[0, 0]).all())
    assert hw_matrix(w).shape == (4, 54) and torch.equal(hw_matrix(w)[1, :6], w[1, :, 0, 0])


@pytest.mark.parametrize("alpha_zero", [False, True], ids=["alpha-beta", "zero-beta"])
def test_one_by_one_blocks_are_the_element_wise_closed_form(alpha_zero):
    for seed in range(5):
        w = torch.randn(12, 20, generator=torch.Generator().manual_seed(seed)) ** 3
        for ec in (0.05, 0.3, 0.7):
            got = closed_form_block_alpha_beta(w, ec, (1, 1), alpha_zero=alpha_zero)
            want = closed_form_alpha_beta(w, ec, alpha_zero=alpha_zero)
            assert torch.equal(got[0], want[0])
            assert torch.allclose(got[1], want[1]) and torch.allclose(got[2], want[2])


@pytest.mark.parametrize("alpha_zero", [False, True], ids=["alpha-beta", "zero-beta"])
def test_block_closed_form_is_the_least_squares_optimum(alpha_zero):
    """Brute force over every union of k blocks (6 blocks of 2x2 in a 4x6 weight)."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        w = torch.tensor(rng.laplace(size=(4, 6)) + rng.normal())
        ec = float(rng.uniform(0.1, 0.9))
        b, alpha, beta = closed_form_block_alpha_beta(w, ec, (2, 2), alpha_zero=alpha_zero)
        k = ec_to_k(ec, 6)
        best = np.inf
        for chosen in itertools.combinations(range(6), k):
            grid = torch.zeros(2, 3, dtype=w.dtype)
            grid.view(-1)[list(chosen)] = 1
            m = grid.repeat_interleave(2, 0).repeat_interleave(2, 1)
            a = 0.0 if alpha_zero else float(w[m == 0].mean())
            best = min(best, sse(w, m, a, float(w[m == 1].mean())))
        assert sse(w, b, float(alpha), float(beta)) == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_top_side_only_and_ties():
    w = -torch.ones(4, 8)           # every block sum ties: still exactly k blocks
    b, _, _ = closed_form_block_alpha_beta(w, 0.25, (2, 2))
    assert int(b.sum()) == 2 * 4 and is_block_constant(b, (2, 2))
    w = torch.randn(8, 8, generator=torch.Generator().manual_seed(1))
    b, _, _ = closed_form_block_alpha_beta(w, 0.25, (2, 2), both_sides=False)
    sums = block_sums(w, (2, 2)).flatten()
    chosen = block_sums(b, (2, 2)).flatten() > 0
    assert sums[chosen].min() >= sums[~chosen].max(), "top side: the largest block sums"


def test_quantizer_forward_is_block_constant_with_straight_through_gradient():
    q = ClosedFormAlphaBetaQuant(0.1, per_channel=False, clip=1.5, block=(4, 4))
    w = (torch.randn(16, 32) * 0.1).requires_grad_(True)
    y, scale, zp, _ = q(w)
    b = ((y - (-zp * scale)) / scale).round()
    assert is_block_constant(b.detach(), (4, 4)) and int(b.sum()) == 16 * 3
    y.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_learned_scheme_signs_per_block_and_group_penalty():
    q = LearnedTauPhiQuant(clip=1.5, tau_init=1.0, phi_init=0.0, block=(2, 4))
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(2))
    b, _, _ = q.levels(w)
    assert is_block_constant(b, (2, 4))
    assert torch.equal(block_sums(b, (2, 4)) > 0, block_sums(w, (2, 4)) > 0)
    model = build_model("mlp", (1, 8, 8), 10, WeightDomain("alpha-beta-learned", 0.1, block=(2, 4)), hidden="16",
                        dense_classifier=True)
    layer = binary_layers(model)[0][1]
    p = positive_share(model)
    b, _, _ = layer_levels(layer)
    assert float(p.detach()) == pytest.approx(float(b.mean()))   # the budget counts the weights of positive blocks
    p.backward()
    g = layer.weight.grad      # the clipped STE of the block step, spread over the block: as element-wise
    assert torch.allclose(g, torch.full_like(g, 1 / b.numel()))


@pytest.mark.parametrize("bad", ["16", "4x", "x4", "0x4", "4x-1", "axb", 16])
def test_bad_block_is_a_one_line_user_error(bad):
    with pytest.raises(UserError, match="--block") as exc:
        TrainConfig(block=bad)
    assert "\n" not in str(exc.value)


def test_block_config_validation_and_old_configs():
    assert parse_block(" 16X8 ") == (16, 8) and parse_block(None) is None
    with pytest.raises(UserError, match="bipolar"):
        TrainConfig(domain="bipolar", ec=None, block="4x4").weight_domain()
    with pytest.raises(UserError, match="per-channel"):
        TrainConfig(per_channel=True, block="4x4").weight_domain()
    with pytest.raises(UserError, match=r"layer 'features.0' \(64 outputs are not a multiple of 3 block rows\)"):
        build_model("tfc", (1, 28, 28), 10, TrainConfig(block="3x16").weight_domain(), dense_classifier=True)
    with pytest.raises(UserError, match="features.3.*10 outputs"):    # a sparse classifier must be tiled too
        build_model("mlp", (1, 8, 8), 10, TrainConfig(block="4x4").weight_domain(), hidden="16",
                    dense_classifier=False)
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "block"}
    assert TrainConfig().differences(old) == []      # a checkpoint from before --block still resumes
    assert TrainConfig(block="4x4").differences(old) == [("block", None, "4x4")]


def _fold_cycles(model, pe, simd):
    """Memory-mode cycles/frame of the hidden layers at one fold, from the trained masks (hardware layout)."""
    out = []
    for _, layer in binary_layers(model)[:-1]:
        b, _, _ = layer_levels(layer)
        out.append(cycles_per_frame_of(b.T.numpy().astype(bool), pe, simd))
    return out


def test_tiny_block_train_saves_block_masks_that_fold_into_fewer_cycles(tmp_path, capsys):
    common = ["--dataset", "digits", "--model", "mlp", "--hidden", "64,64", "--epochs", "1", "--batch-size", "32",
              "--train-subset", "256", "--ec", "0.1", "--quiet"]
    assert main(["train", "--out", str(tmp_path / "blk"), "--block", "4x4", *common]) == 0
    assert main(["train", "--out", str(tmp_path / "el"), *common]) == 0
    capsys.readouterr()
    blk, cfg, _ = model_from_checkpoint(tmp_path / "blk" / "checkpoint.pt")
    el, _, _ = model_from_checkpoint(tmp_path / "el" / "checkpoint.pt")
    assert cfg.block == "4x4"
    for _, layer in binary_layers(blk)[:-1]:
        b, _, _ = layer_levels(layer)
        assert is_block_constant(b, (4, 4))
        assert float(b.mean()) == pytest.approx(0.1, abs=0.02)
    blk_cycles, el_cycles = _fold_cycles(blk, 4, 4), _fold_cycles(el, 4, 4)
    assert all(b < e for b, e in zip(blk_cycles, el_cycles)), (blk_cycles, el_cycles)
    rep = export_checkpoint(tmp_path / "blk" / "checkpoint.pt", tmp_path / "m.onnx", evaluate=False)
    assert rep["block"] == "4x4" and json.loads((tmp_path / "m.json").read_text())["block"] == "4x4"


def test_cli_block_flag_bad_value_is_one_line(tmp_path, capsys):
    rc = main(["train", "--out", str(tmp_path / "x"), "--dataset", "digits", "--model", "tfc", "--block", "4by4",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--block must be ROWSxCOLS" in err
