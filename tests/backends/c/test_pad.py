"""C kernel for pad: every mode, negative pads (crop), every dtype, quantized pad values."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.kernels import Unsupported, pad
from edgecc.backends.c.runner import have_cc
from edgecc.ir import Op, TensorType, Value
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Arg, Case, kernel_tests, onnx_ref, random_data  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(11)


def data(shape, dtype="float32"):
    return random_data(rng, shape, dtype)


def crop_then_pad(x, pads, mode, value):
    """Negative pads crop first; numpy pads the rest (the order onnxruntime uses)."""
    r = x.ndim
    x = x[tuple(slice(max(-pads[k], 0), x.shape[k] - max(-pads[r + k], 0)) for k in range(r))]
    widths = [(max(pads[k], 0), max(pads[r + k], 0)) for k in range(r)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=np.array(value).astype(x.dtype))
    return np.pad(x, widths, mode=mode)


CASES = []
for i, (shape, pads, mode, value, dt) in enumerate([
        ((3, 4), [1, 2, 0, 3], "constant", 1.5, "float32"),
        ((1, 2, 3, 4), [0, 0, 1, 1, 0, 0, 2, 1], "constant", 0.0, "float32"),
        ((2, 3), [2, 0, 1, 0], "constant", -3.0, "int8"),  # outer rows are whole pad blocks
        ((5,), [2, 3], "constant", 7.0, "int64"),
        ((2, 3, 4), [0, 1, 1, 0, 1, 2], "reflect", 0.0, "float32"),
        ((1, 2, 4, 5), [0, 0, 2, 3, 0, 0, 1, 4], "reflect", 0.0, "uint8"),
        ((2, 3, 4), [1, 0, 2, 1, 2, 2], "edge", 0.0, "int16"),
        ((3, 4), [2, 3, 4, 5], "edge", 0.0, "float32"),
        ((2, 3, 4), [0, 2, 3, 1, 1, 2], "wrap", 0.0, "float32"),
        ((3, 2), [1, 1, 1, 1], "constant", 1.0, "bool"),
        ((3, 2), [1, 0, 0, 1], "wrap", 0.0, "int32")]):
    x = data(shape, dt)
    ref = onnx_ref("Pad", [x, np.array(pads, np.int64), np.array(value).astype(x.dtype)], dict(mode=mode))
    CASES.append(Case(f"pad{i}", "pad", dict(pads=pads, mode=mode, value=value), [x], ref))

for i, (shape, pads, mode) in enumerate([
        ((4, 5), [-1, 2, 0, -2], "constant"), ((2, 4, 6), [0, -1, 2, 0, 1, -3], "reflect"),
        ((3, 6), [1, -2, -1, 3], "edge"), ((3, 6), [-1, 2, 1, -1], "wrap"),
        ((2, 3), [0, -3, 0, 2], "constant")]):  # an axis cropped away: all pad value
    x = data(shape, "float32")
    CASES.append(Case(f"crop{i}", "pad", dict(pads=pads, mode=mode, value=0.25), [x],
                      [crop_then_pad(x, pads, mode, 0.25)]))

# quantized: the pad value is quantized with the result's scale and zero point
Q = Quant((0.1,), (10,))
xq = data((2, 3), "uint8")
CASES.append(Case("pad_quant", "pad", dict(pads=[0, 1, 0, 1], value=0.5), [Arg(xq, quant=Q)],
                  [np.pad(xq, [(0, 0), (1, 1)], constant_values=15)], result_quant=Q))
xq8 = data((4,), "int8")
CASES.append(Case("pad_quant_saturate", "pad", dict(pads=[1, 1], value=100.0), [Arg(xq8, quant=Q)],
                  [np.pad(xq8, [(1, 1)], constant_values=127)], result_quant=Q))


results, test_pad, test_pad_sanitized = kernel_tests(CASES)


def test_negative_pads_match_onnxruntime():
    """The crop-then-pad reading of negative pads is what onnxruntime computes."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper as oh
    for shape, pads, mode in [((4, 5), [-1, 2, 0, -2], "constant"), ((3, 6), [1, -2, -1, 3], "edge"),
                              ((2, 4, 6), [0, -1, 2, 0, 1, -3], "reflect")]:
        x = data(shape, "float32")
        node = oh.make_node("Pad", ["x", "p"], ["y"], mode=mode)
        g = oh.make_graph([node], "g", [oh.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [oh.make_tensor("p", TensorProto.INT64, [len(pads)], pads)])
        m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 18)])
        got = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_array_equal(got, crop_then_pad(x, pads, mode, 0.0))


def test_requant_is_unsupported():
    x = Value("x", TensorType((2, 3), "i8", Quant((0.1,), (0,))))
    y = Value("y", TensorType((2, 5), "i8", Quant((0.2,), (0,))))
    with pytest.raises(Unsupported):
        pad.pad(Op("pad", [x], [y], fill_defaults("pad", dict(pads=[0, 1, 0, 1])), "p"))
