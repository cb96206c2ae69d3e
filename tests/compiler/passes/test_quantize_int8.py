"""calibrate + quantize_int8 + quantization_report on hand-built float graphs: golden IR after
quantization, and the interpreter's numbers before and after (close, not equal: int8)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, FakeBackend, assert_matches_golden, context, kinds  # noqa: E402
from test_float_fallback import refuse_kinds as refuse  # noqa: E402

from edgecc.compiler.passes import get_pass  # noqa: E402
from edgecc.compiler.quantization.plan import plan_quant  # noqa: E402
from edgecc.ir import parse, print_graph, verify  # noqa: E402
from edgecc.ir.errors import EdgeccError  # noqa: E402
from edgecc.ir.interp import run, to_real, to_stored  # noqa: E402

CONV = dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1])
POOL = dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0], dilations=[1, 1])
N_CALIB = 24


def calibration(graph, seed=0, n=N_CALIB) -> dict:
    rng = np.random.default_rng(seed)
    return {v.name: rng.random((n,) + tuple(v.type.shape)).astype(np.float32) for v in graph.inputs}


def quantize(graph, backend=None, **options):
    """calibrate, quantize_int8 and the report, as the pipeline runs them; returns (float copy, graph)."""
    before = parse(print_graph(graph))
    options.setdefault("calibration", calibration(graph))
    ctx = context(backend, **options)
    for name in ("calibrate", "quantize_int8", "quantization_report"):
        graph = get_pass(name)(graph, ctx)
        verify(graph)
    return before, graph


def sqnr(ref, got) -> float:
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2)))


def assert_close_to_float(before, after, calib, min_db=30.0):
    """Every output of `after` (dequantized) within min_db SQNR of `before` on the calibration samples."""
    n = len(next(iter(calib.values())))
    refs, gots = [], []
    for i in range(n):
        xs = [calib[v.name][i] for v in before.inputs]
        xq = [to_stored(v.type, x) if v.type.quant is not None else x for v, x in zip(after.inputs, xs)]
        refs.append(run(before, xs))
        gots.append([to_real(v.type, y) for v, y in zip(after.outputs, run(after, xq))])
    for k in range(len(before.outputs)):
        db = sqnr([r[k] for r in refs], [g[k] for g in gots])
        assert db >= min_db, f"output {k}: {db:.1f} dB"


def small_cnn(name="cnn"):
    b = Builder(name)
    x = b.input("x", (1, 2, 6, 6))
    y = b.op("conv", [x, b.weights("w1", (4, 2, 3, 3)), b.weights("b1", (4,), scale=0.1)], name="conv1",
             activation="relu", **CONV)
    y = b.op("max_pool", [y], name="pool", **POOL)
    y = b.op("reshape", [y], name="flatten", shape=[1, 36])
    y = b.op("fully_connected", [y, b.weights("w2", (3, 36), scale=0.2), b.weights("b2", (3,), scale=0.1)],
             name="fc")
    return b, y


def test_cnn_golden():
    b, y = small_cnn()
    s = b.op("softmax", [y], name="softmax", axis=1)
    calib = calibration(b.g)
    before, g = quantize(b.graph(y, s), calibration=calib)
    assert_matches_golden(f"# before\n{print_graph(before)}# after quantize_int8\n{print_graph(g)}",
                          "quantize_int8_cnn")
    # the softmax is a float output: it stays float, and the fc it reads writes float straight from its
    # accumulator (test_softmax_inside_the_graph_is_int8: the softmax's own int8 form)
    assert kinds(g) == ["quantize", "conv", "max_pool", "reshape", "fully_connected", "softmax"]
    assert g.ops[5].result.type.dtype == "f32"
    assert {f["name"]: f["reason"] for f in g.meta["quantize_int8"]["float_layers"]}["softmax"].startswith(
        "a softmax the model outputs as float stays float")
    conv = g.ops[1]
    w, bias = conv.operands[1], conv.operands[2]
    assert w.type.dtype == "i8" and w.type.quant.axis == 0 and set(w.type.quant.zero_point) == {0}
    assert np.abs(w.data.astype(int)).max() == 127  # symmetric per channel: each channel reaches 127
    assert bias.type.dtype == "i32"
    sx = conv.operands[0].type.quant.scale[0]
    np.testing.assert_allclose(bias.type.quant.scale, np.float32(sx) * np.float32(w.type.quant.scale), rtol=1e-6)
    assert g.ops[2].result.type.quant == g.ops[1].result.type.quant == g.ops[3].result.type.quant  # moves
    assert_close_to_float(before, g, calib)


@pytest.mark.parametrize("io", ["float", "int8"])
def test_softmax_inside_the_graph_is_int8(io):
    """A softmax read by another layer (or any softmax with an int8 interface) is quantized the TFLite way:
    scale 1/256, zero point -128."""
    b, y = small_cnn()
    s = b.op("softmax", [y], name="softmax", axis=1)
    t = b.op("reshape", [s], name="after", shape=[3]) if io == "float" else s
    _, g = quantize(b.graph(t), io=io)
    (softmax,) = [op for op in g.ops if op.kind == "softmax"]
    assert softmax.result.type.dtype == "i8"
    assert softmax.result.type.quant.scale == (1 / 256,) and softmax.result.type.quant.zero_point == (-128,)


def test_float_output_straight_from_the_accumulator():
    b, y = small_cnn()
    before, g = quantize(b.graph(y))
    assert kinds(g) == ["quantize", "conv", "max_pool", "reshape", "fully_connected"]
    assert g.outputs[0].name == "fc" and g.outputs[0].type.dtype == "f32"
    assert g.ops[-1].operands[0].type.dtype == "i8"


def test_float_output_keeps_a_fused_activation():
    """The float store scales the accumulator and nothing more: a layer with a fused relu keeps its int8
    result (which the requantization clamps) and a dequantize."""
    from edgecc.backends.registry import backend_for

    b = Builder("relu_out")
    x = b.input("x", (1, 8))
    y = b.op("fully_connected", [x, b.weights("w", (6, 8), scale=0.5), b.weights("b", (6,), scale=0.5)],
             name="fc", activation="relu")
    calib = calibration(b.g)
    before, g = quantize(b.graph(y), backend_for("cortex-m7"), calibration=calib)
    assert kinds(g) == ["quantize", "fully_connected", "dequantize"]
    assert g.ops[1].result.type.dtype == "i8"
    assert_close_to_float(before, g, calib)


def test_ops_without_int8_kernel_stay_float_golden():
    b = Builder("mixed")
    x = b.input("x", (1, 2, 4, 4))
    y = b.op("conv", [x, b.weights("w1", (3, 2, 3, 3))], name="conv1", **CONV)
    y = b.op("sigmoid", [y], name="gate")
    y = b.op("conv", [y, b.weights("w2", (2, 3, 1, 1))], name="conv2", strides=[1, 1], pads=[0, 0, 0, 0],
             dilations=[1, 1])
    y = b.op("tanh", [y], name="squash")
    calib = calibration(b.g)
    before, g = quantize(b.graph(y), refuse("sigmoid", "tanh"), calibration=calib)
    assert_matches_golden(f"# before\n{print_graph(before)}# after quantize_int8\n{print_graph(g)}",
                          "quantize_int8_mixed")
    assert kinds(g) == ["quantize", "conv", "dequantize", "sigmoid", "quantize", "conv", "dequantize", "tanh"]
    floats = {f["name"]: f["reason"] for f in g.meta["quantization"]["float_layers"]}
    assert floats == {"gate": "no int8 kernel (no int8 sigmoid)", "squash": "no int8 kernel (no int8 tanh)"}
    precision = {r["name"]: r["precision"] for r in g.meta["quantization"]["layers"]}
    assert precision == {"conv1": "int8", "gate": "float", "conv2": "int8", "squash": "float"}
    assert_close_to_float(before, g, calib)


def test_keep_float_and_unknown_names():
    b, y = small_cnn()
    before, g = quantize(b.graph(y), keep_float=("conv1",))
    assert kinds(g) == ["conv", "quantize", "max_pool", "reshape", "fully_connected"]
    assert g.ops[0].result.type.dtype == "f32" and g.ops[0].operands[1].type.dtype == "f32"
    assert g.meta["quantization"]["float_layers"] == [{"name": "conv1", "op": "conv",
                                                      "reason": "kept float (--keep-float)"}]
    b, y = small_cnn()
    with pytest.raises(EdgeccError, match="--keep-float: no layer named 'relu1'.*conv1, pool, flatten, fc"):
        quantize(b.graph(y), keep_float=("relu1",))


def test_int8_interface_golden():
    b, y = small_cnn("io_int8")
    calib = calibration(b.g)
    before, g = quantize(b.graph(y), io="int8", calibration=calib)
    assert_matches_golden(f"# before\n{print_graph(before)}# after quantize_int8\n{print_graph(g)}",
                          "quantize_int8_io_int8")
    assert kinds(g) == ["conv", "max_pool", "reshape", "fully_connected"]
    assert [v.name for v in g.inputs] == ["x"] and [v.name for v in g.outputs] == ["fc"]
    assert g.inputs[0].type.dtype == "i8" and g.outputs[0].type.dtype == "i8"
    assert g.inputs[0].type.quant.scale[0] == pytest.approx(1 / 255, rel=1e-3)  # [0, 1) inputs
    assert_close_to_float(before, g, calib)


def test_float_op_at_an_int8_output_gets_a_quantize():
    b, y = small_cnn()
    t = b.op("tanh", [y], name="squash")
    before, g = quantize(b.graph(t), refuse("tanh"), io="int8")
    assert kinds(g)[-2:] == ["tanh", "quantize"] and g.outputs[0].name == "squash"
    assert g.outputs[0].type.dtype == "i8"


def test_fused_leaky_relu_without_kernel_splits_out():
    def why_not(op):
        quantized = any(v.type.quant is not None for v in op.inputs() + op.results)
        return "no fused leaky_relu" if quantized and op.attrs.get("activation") == "leaky_relu" else None

    b = Builder("leaky")
    x = b.input("x", (1, 2, 4, 4))
    y = b.op("conv", [x, b.weights("w", (3, 2, 3, 3))], name="conv", activation="leaky_relu", act_params=[0.1],
             **CONV)
    y = b.op("global_average_pool", [y], name="gap")
    calib = {"x": np.random.default_rng(1).standard_normal((N_CALIB, 1, 2, 4, 4)).astype(np.float32)}
    before, g = quantize(b.graph(y), FakeBackend(why_not), calibration=calib)
    assert kinds(g) == ["quantize", "conv", "leaky_relu", "global_average_pool", "dequantize"]
    conv, leaky = g.ops[1], g.ops[2]
    assert conv.attrs["activation"] == "none" and leaky.attrs["alpha"] == pytest.approx(0.1)
    lo_pre = conv.result.type.quant.scale[0] * (-128 - conv.result.type.quant.zero_point[0])
    lo_post = leaky.result.type.quant.scale[0] * (-128 - leaky.result.type.quant.zero_point[0])
    assert lo_pre == pytest.approx(lo_post / 0.1, rel=0.02)  # the range before the activation
    assert_close_to_float(before, g, calib)


def test_plan_moves_share_parameters_clamps_take_their_range():
    b = Builder()
    x = b.input("x", (1, 4))
    a = b.op("add", [x, b.input("z", (1, 4))], name="add")
    r = b.op("relu", [a], name="relu")
    m = b.op("reshape", [r], name="reshape", shape=[2, 2])
    g = b.graph(m)
    ranges = {"x": [-1, 1], "z": [-1, 1], "add": [-2.0, 2.0], "relu": [0.0, 2.0], "reshape": [0.0, 1.0]}
    plan = {v.name: q for v, q in plan_quant(g, ranges).items()}
    assert plan["add"] == plan["relu"] == plan["reshape"]  # the add saturates where the relu cuts
    assert plan["relu"].zero_point == (-128,)
    assert plan["reshape"].scale[0] == pytest.approx(1.0 / 255)  # the range its reader reads


def test_report_rows_and_meta():
    b, y = small_cnn()
    _, g = quantize(b.graph(y))
    rep = g.meta["quantization"]
    assert "float_graph" not in g.meta["quantize_int8"]
    assert [r["name"] for r in rep["layers"]] == ["conv1", "pool", "flatten", "fc"]
    assert all(r["precision"] == "int8" and r["sqnr_db"] > 25 for r in rep["layers"])
    assert rep["end_to_end"][0]["output"] == "fc" and rep["end_to_end"][0]["sqnr_db"] > 25
    assert rep["calibration"] == {"method": "minmax", "percentile": None, "samples": N_CALIB}
    assert rep["weight_bytes"]["quantized"] < rep["weight_bytes"]["float"] / 2


def test_quantized_models_and_missing_calibration_are_refused():
    b, y = small_cnn()
    with pytest.raises(EdgeccError, match="needs calibration data"):
        get_pass("calibrate")(b.graph(y), context())
    b, y = small_cnn()
    _, g = quantize(b.graph(y))
    with pytest.raises(EdgeccError, match="quantized already"):
        get_pass("calibrate")(g, context(calibration=calibration(g)))
