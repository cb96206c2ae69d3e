"""The MLPerf Tiny models lift, verify, and (through the IR interpreter) reproduce onnxruntime's
golden outputs: float within 1e-4 of the output range, int8 within 1 LSB."""
import numpy as np
import pytest

from conftest import MLPERF_STEMS, mlperf_path
from edgecc.compiler.frontend import load_onnx
from edgecc.ir import verify

INT8_STEMS = [s for s in MLPERF_STEMS if s.endswith("int8")]


@pytest.fixture(scope="module")
def lifted():
    cache = {}

    def get(stem):
        if stem not in cache:
            cache[stem] = load_onnx(mlperf_path(stem))
        return cache[stem]
    return get


@pytest.mark.parametrize("stem", MLPERF_STEMS)
def test_lifts_and_verifies(stem, lifted):
    g = lifted(stem)
    verify(g)
    assert len(g.inputs) == 1 and len(g.outputs) == 1
    assert g.inputs[0].type.shape[0] == 1, "the symbolic batch is pinned to 1"
    assert all(c.is_const for c in g.constants)


@pytest.mark.parametrize("stem", MLPERF_STEMS)
def test_interpreter_reproduces_golden(stem, lifted):
    interp = pytest.importorskip("edgecc.ir.interp")
    gold = np.load(mlperf_path(stem, "npz"))
    got = interp.run(lifted(stem), [gold["input"]])[0]
    want = gold["output"]
    assert got.dtype == want.dtype and got.shape == want.shape
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64)).max()
    if stem.endswith("int8"):
        assert diff <= 1
    else:
        span = float(want.astype(np.float64).max() - want.astype(np.float64).min())
        assert diff <= 1e-4 * span


@pytest.mark.parametrize("stem", INT8_STEMS)
def test_int8_models_keep_no_quantize_ops(stem, lifted):
    """The QDQ models have integer interfaces, so every Q/DQ pair lifts into types."""
    kinds = {op.kind for op in lifted(stem).ops}
    assert not kinds & {"quantize", "dequantize", "cast"}


def test_kws_int8_lifts_to_quantized_convs(lifted):
    g = lifted("kws_int8")
    x = g.inputs[0]
    assert x.type.dtype == "i8" and x.type.quant is not None and not x.type.quant.per_axis
    assert g.outputs[0].name == "Identity" and g.outputs[0].type.dtype == "i8" and g.outputs[0].type.is_quantized
    convs = [op for op in g.ops if op.kind == "conv"]
    assert len(convs) == 9
    for conv in convs:
        x, w, b = conv.operands
        assert x.type.dtype == "i8" and x.type.is_quantized and not x.type.quant.per_axis
        assert w.is_const and w.type.dtype == "i8" and w.type.quant.axis == 0
        assert len(w.type.quant.scale) == w.type.shape[0]
        assert b.is_const and b.type.dtype == "i32" and b.type.quant.axis == 0
        assert set(b.type.quant.zero_point) == {0}
    relus = [op for op in g.ops if op.kind == "relu"]
    assert len(relus) == 9
    assert all(r.result.type.dtype == "i8" and r.result.type.is_quantized for r in relus)
    # every relu reads a float conv result and gives the int8 tensor the next layer reads
    assert all(r.operands[0].producer.kind == "conv" and r.operands[0].type.is_float for r in relus)


def test_fp32_model_keeps_int8_weights_quantized(lifted):
    """kws_fp32 stores some weights as int8 + DequantizeLinear: they stay quantized constants."""
    g = lifted("kws_fp32")
    weights = [op.operands[1] for op in g.ops if op.kind == "conv"]
    assert any(w.type.dtype == "i8" and w.type.is_quantized for w in weights)
    assert all(v.type.is_float for op in g.ops for v in op.results)
