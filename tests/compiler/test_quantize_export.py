"""--emit onnx: the quantized graph as QDQ ONNX that onnxruntime runs, computing what the IR means."""
from __future__ import annotations

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantize_cases import calibration, float_cnn  # noqa: E402

from edgecc.compiler import driver  # noqa: E402
from edgecc.compiler.quantization import Quantization  # noqa: E402
from edgecc.ir.errors import EdgeccError  # noqa: E402
from edgecc.ir.interp import run, to_stored  # noqa: E402


def session(path, optimize=False):
    so = ort.SessionOptions()
    if not optimize:  # every QDQ node in float: exactly the scheme's numbers
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("io", ["float", "int8"])
def test_qdq_model_runs_in_onnxruntime_as_the_ir_does(tmp_path, io):
    model = float_cnn(tmp_path / "cnn.onnx")
    out = tmp_path / "cnn_int8.onnx"
    art = driver.compile(model, target="host", outdir=str(out), emit="onnx",
                         quantize=Quantization(calibration(), io=io))
    assert art.paths == [str(out)]
    m = onnx.load(str(out))
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm", "Softmax"} <= ops
    assert [i.name for i in m.graph.input] == ["x"] and [o.name for o in m.graph.output] == ["logits", "prob"]
    weights = {t.name: t.data_type for t in m.graph.initializer}
    assert weights["w1_q"] == TensorProto.INT8 and weights["b1_q"] == TensorProto.INT32
    sess = session(out)
    g = art.graph
    for x in calibration(4, seed=1)["x"]:
        xin = to_stored(g.inputs[0].type, x) if io == "int8" else x
        want = run(g, [xin])
        got = sess.run(None, {"x": xin})
        for v, a, b in zip(g.outputs, want, got):
            assert a.dtype == b.dtype
            step = v.type.quant.scale[0] if v.type.quant is not None else 1e-3 * np.ptp(a) + 1e-6
            lsb = 1 if v.type.quant is not None else step
            assert np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) <= lsb + 1e-6, v.name
    assert session(out, optimize=True).run(None, {"x": xin})[1].shape == (1, 5)


def test_float_graphs_export_too(tmp_path):
    model = float_cnn(tmp_path / "cnn.onnx")
    out = tmp_path / "again.onnx"
    driver.compile(model, outdir=str(out), emit="onnx")
    x = calibration(1)["x"][0]
    for a, b in zip(session(model).run(None, {"x": x}), session(out).run(None, {"x": x})):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_export_errors(tmp_path):
    model = float_cnn(tmp_path / "cnn.onnx")
    with pytest.raises(EdgeccError, match="needs an output file"):
        driver.compile(model, emit="onnx", quantize=Quantization(calibration()))
    g = driver.compile(model, target="host", outdir=str(tmp_path / "c"), emit="c").graph  # lowered: NHWC
    with pytest.raises(EdgeccError, match="channels-last"):
        driver.compile(g, outdir=str(tmp_path / "nhwc.onnx"), emit="onnx")
    assert not (tmp_path / "nhwc.onnx").exists()
