"""4-bit QDQ models: DequantizeLinear of an INT4 (or UINT4) weight lifts to an i4 constant, in the standard
domain at opset 21 and in onnxruntime's com.microsoft domain before it (whose Q/DQ onnx's shape inference
does not know: the frontend types their results); the compiled C gives onnxruntime's numbers."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

from edgecc.backends.c.runner import STRICT_CFLAGS, build_and_run, have_cc
from edgecc.compiler import driver
from edgecc.compiler.frontend import load_onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builders import I8, const, model, ort_outputs, save, vi  # noqa: E402

ml_dtypes = pytest.importorskip("ml_dtypes")
RNG = np.random.default_rng(21)
MS = "com.microsoft"


def int4_model(unsigned=False, zero=0, domain=""):
    """x (float) -> Q/DQ -> conv 3x3 (4-bit weights per channel) -> relu -> Q/DQ -> gemm (4-bit weights) -> Q:
    int8 codes out. `zero`: the weights' zero point (for unsigned codes, their offset from 8)."""
    offset = 8 if unsigned else 0
    dtype, elem = (ml_dtypes.uint4, TensorProto.UINT4) if unsigned else (ml_dtypes.int4, TensorProto.INT4)
    w1 = RNG.integers(-8, 8, (6, 3, 3, 3)) + offset
    w2 = RNG.integers(-8, 8, (5, 6 * 4 * 4)) + offset
    s1 = (RNG.random(6) * 0.05 + 0.02).astype(np.float32)
    s2 = (RNG.random(5) * 0.02 + 0.01).astype(np.float32)
    z1 = np.full(6, offset + zero)
    z2 = np.full(5, offset + zero)
    inits = [const("w1", w1.astype(dtype)), const("s1", s1), const("z1", z1.astype(dtype)),
             const("w2", w2.astype(dtype)), const("s2", s2), const("z2", z2.astype(dtype)),
             const("b1", RNG.integers(-300, 300, 6).astype(np.int32)),
             const("b1s", (s1 * np.float32(0.02)).astype(np.float32)), const("b1z", np.zeros(6, np.int32)),
             const("xs", np.float32(0.02)), const("xz", np.int8(-3)), const("hs", np.float32(0.05)),
             const("hz", np.int8(-128)), const("shape", np.array([1, 96], np.int64)),
             const("ys", np.float32(0.1)), const("yz", np.int8(2))]
    dq = dict(domain=domain) if domain else {}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], **dq),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], **dq),
        helper.make_node("DequantizeLinear", ["w1", "s1", "z1"], ["w1d"], axis=0, **dq),
        helper.make_node("DequantizeLinear", ["b1", "b1s", "b1z"], ["b1d"], axis=0, **dq),
        helper.make_node("Conv", ["xd", "w1d", "b1d"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "hs", "hz"], ["rq"], **dq),
        helper.make_node("Reshape", ["rq", "shape"], ["fq"]),
        helper.make_node("DequantizeLinear", ["fq", "hs", "hz"], ["f"], **dq),
        helper.make_node("DequantizeLinear", ["w2", "s2", "z2"], ["w2d"], axis=0, **dq),
        helper.make_node("Gemm", ["f", "w2d"], ["g"], transB=1),
        helper.make_node("QuantizeLinear", ["g", "ys", "yz"], ["y"], **dq),
    ]
    m = model(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 5], I8)], inits, opset=13 if domain else 21,
              domains=(MS,) if domain else ())
    m.ir_version = 10  # INT4 came with IR version 10
    return m


def weights(graph):
    return {c.name: c for c in graph.constants if c.name in ("w1", "w2")}


@pytest.mark.parametrize("domain", ["", MS], ids=["opset21", "com.microsoft"])
def test_int4_weights_lift_to_i4(tmp_path, domain):
    g = load_onnx(save(int4_model(domain=domain), tmp_path))
    w = weights(g)
    assert {v.type.dtype for v in w.values()} == {"i4"}
    assert w["w1"].type.quant.axis == 0 and w["w1"].type.quant.zero_point == (0,) * 6
    assert w["w1"].data.min() >= -8 and w["w1"].data.max() <= 7
    assert [op.kind for op in g.ops] == ["quantize", "conv", "relu", "reshape", "gemm"]
    assert g.outputs[0].type.dtype == "i8"


def test_symmetric_uint4_is_recentred(tmp_path):
    m = int4_model(unsigned=True)
    g = load_onnx(save(m, tmp_path))
    w1 = weights(g)["w1"]
    assert w1.type.dtype == "i4" and w1.type.quant.zero_point == (0,) * 6
    from onnx import numpy_helper
    raw = numpy_helper.to_array([t for t in m.graph.initializer if t.name == "w1"][0]).astype(np.int16)
    np.testing.assert_array_equal(w1.data, raw - 8)


@pytest.mark.parametrize("unsigned", [False, True])
def test_a_zero_point_keeps_the_codes_as_8_bit_integers(tmp_path, unsigned):
    g = load_onnx(save(int4_model(unsigned=unsigned, zero=2), tmp_path))
    w1 = weights(g)["w1"]
    assert w1.type.dtype == ("u8" if unsigned else "i8")
    assert w1.type.quant.zero_point == ((10,) if unsigned else (2,)) * 6


@pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
@pytest.mark.parametrize("target", ["host", "cortex-m7", "cortex-m0plus"])
@pytest.mark.parametrize("domain", ["", MS], ids=["opset21", "com.microsoft"])
def test_compiled_c_gives_onnxruntimes_codes(tmp_path, domain, target):
    """onnxruntime runs the 4-bit QDQ model in float (DequantizeLinear, float Conv): a near tie may round the
    other way than the exact integer accumulator does, one LSB; the C of every target is the same integers."""
    path = save(int4_model(domain=domain), tmp_path)
    art = driver.compile(path, target=target, outdir=str(tmp_path / "c"), emit="c")
    assert "i4" in {c.type.dtype for c in load_onnx(path).constants}
    xs = [RNG.standard_normal((1, 3, 8, 8)).astype(np.float32) for _ in range(8)]
    for x in xs:
        (want,) = ort_outputs(path, [x])
        (got,) = build_and_run(str(tmp_path / "c"), art.graph, [x], cflags=STRICT_CFLAGS)
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max() <= 1
