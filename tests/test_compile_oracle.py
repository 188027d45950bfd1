"""Independent oracle: on a +-1 model, FINN's own MVAU in binaryXnorMode (executed by FINN) gives the
same layer outputs as SparseXnorMVAU on every Fashion-MNIST test image (10,000)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("finn")


def test_finn_binary_xnor_mvau_matches_sparse_mvau_on_all_test_images(compiled):
    from sbnn.hls.sparse_mvau.oracle import oracle_compare
    from sbnn.export.verify import pixels_for_hw
    from sbnn.training.datasets import load_dataset

    c = compiled["bipolar"]
    _, test_set, _ = load_dataset("fashion-mnist")
    x = pixels_for_hw(test_set.tensors[0].numpy(), c["compile"]["input_max_value"])
    assert x.shape[0] == 10000
    rows = oracle_compare(c["build"], x, batch=1000)
    assert len(rows) == 3
    for r in rows:
        assert r["mismatching_values"] == 0, r
    assert rows[-1]["compared"].startswith("noActivation")


def test_oracle_detects_a_wrong_threshold(compiled, tmp_path):
    """Negative control: one changed threshold in our graph is caught by the oracle."""
    import shutil

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from sbnn.hls.sparse_mvau.oracle import oracle_compare
    from sbnn.export.verify import pixels_for_hw
    from sbnn.training.datasets import load_dataset

    c = compiled["bipolar"]
    b = tmp_path / "b"
    b.mkdir()
    for p in c["build"].glob("step_*.onnx"):
        shutil.copy(p, b / p.name)
    path = next(b.glob("step_*_infer_kernels.onnx"))
    m = ModelWrapper(str(path))
    inst = getCustomOp([n for n in m.graph.node if n.op_type == "SparseXnorMVAU"][1])
    t = inst.get_nodeattr("thresholds")
    # move neuron 0's threshold to the median accumulator value seen, so that it matters
    t[0] = t[0] + 3
    inst.set_nodeattr("thresholds", t)
    m.save(str(path))
    _, test_set, _ = load_dataset("fashion-mnist")
    x = pixels_for_hw(test_set.tensors[0].numpy()[:500], c["compile"]["input_max_value"])
    rows = oracle_compare(b, x)
    assert rows[1]["mismatching_values"] > 0
    assert np.all([r["mismatching_values"] == 0 for r in rows[:1]])
