"""The graph passes on the MLPerf Tiny models: numbers kept, ops fused, no transpose left.

Each model is imported by the frontend, run by the interpreter on its golden input, lowered by
the host pipeline's graph passes (with a backend that has integer kernels for the usual ops, so
float_fallback has something to do), and run again: int8 models must give the same integers,
float models the same numbers within 1e-5.
"""
from __future__ import annotations

import os
import sys
from collections import Counter

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import MLPERF_STEMS, mlperf_path  # noqa: E402
from pass_cases import FakeBackend, context  # noqa: E402

from edgecc.compiler.passes import get_pass  # noqa: E402
from edgecc.ir import verify  # noqa: E402
from edgecc.ir.interp import run  # noqa: E402

PASSES = ["fold_constants", "fold_batchnorm", "fuse", "layout", "float_fallback"]
INTEGER_KERNELS = {"conv", "fully_connected", "average_pool", "max_pool", "reshape", "add", "relu"}

# what is left after the passes (before float_fallback adds its dequantize/quantize pairs)
EXPECTED = {
    "kws": {"conv": 9, "average_pool": 1, "reshape": 1, "fully_connected": 1, "softmax": 1},
    "vww": {"conv": 27, "average_pool": 1, "reshape": 1, "fully_connected": 1, "softmax": 1},
    "ic": {"conv": 9, "add": 3, "relu": 3, "average_pool": 1, "reshape": 1, "fully_connected": 1, "softmax": 1},
    "ad": {"fully_connected": 10},
}


def integer_backend():
    def why_not(op):
        quantized = any(v.type.quant is not None for v in op.inputs() + op.results)
        if quantized and op.kind not in INTEGER_KERNELS:
            return f"no int8 {op.kind}"
        return None
    return FakeBackend(why_not)


@pytest.mark.parametrize("stem", MLPERF_STEMS)
def test_passes_on_mlperf_model(stem):
    frontend = pytest.importorskip("edgecc.compiler.frontend")
    path = mlperf_path(stem)
    g = frontend.load_onnx(path)
    x = np.load(mlperf_path(stem, "npz"))["input"]
    before = run(g, [x])[0]
    ctx = context(integer_backend())
    counts = {}
    for name in PASSES:
        g = get_pass(name)(g, ctx)
        verify(g)
        counts[name] = Counter(op.kind for op in g.ops)
    after = run(g, [x])[0]
    if before.dtype == np.float32:
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    else:
        assert np.array_equal(after, before)
    assert dict(counts["layout"]) == EXPECTED[stem.split("_")[0]]
    assert counts["float_fallback"]["transpose"] == 0
    if stem.endswith("int8"):
        # only softmax crosses to float and back
        crossings = {"kws": 1, "vww": 1, "ic": 1, "ad": 0}[stem.split("_")[0]]
        assert counts["float_fallback"]["quantize"] == crossings
