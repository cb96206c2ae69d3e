"""Checks of the generated test models (tests/models/make_models.py)."""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_models as mm  # noqa: E402

NAMES = list(mm.MODELS)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("models")
    return outdir, mm.build_all(outdir, verbose=False)


def _golden(path: Path):
    gold = np.load(path.with_suffix(".npz"))
    n_in = sum(k.startswith("input_") for k in gold.files)
    n_out = sum(k.startswith("output_") for k in gold.files)
    assert sorted(gold.files) == sorted([f"input_{i}" for i in range(n_in)] +
                                        [f"output_{i}" for i in range(n_out)])
    return [gold[f"input_{i}"] for i in range(n_in)], [gold[f"output_{i}"] for i in range(n_out)]


def test_metadata(built):
    _, paths = built
    assert list(paths) == NAMES
    for name, info in mm.MODELS.items():
        assert info.kind in ("float", "qdq")
        assert info.tolerance in mm.TOLERANCES
        assert (info.kind == "qdq") == (name in mm.QDQ_SOURCES)
    assert len({info.opset for info in mm.MODELS.values()}) >= 4


@pytest.mark.parametrize("name", NAMES)
def test_checker_and_size(built, name):
    path = built[1][name]
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    assert model.opset_import[0].domain in ("", "ai.onnx")
    assert model.opset_import[0].version == mm.MODELS[name].opset
    assert path.stat().st_size < 2_000_000


@pytest.mark.parametrize("name", NAMES)
def test_golden_matches_fresh_run(built, name):
    path = built[1][name]
    model = onnx.load(str(path))
    inputs, outputs = _golden(path)
    assert len(inputs) == len(model.graph.input)
    assert len(outputs) == len(model.graph.output)
    for want, got in zip(mm.golden_inputs(model), inputs):   # seeded, batch 1
        assert got.dtype == want.dtype and got.shape[0] == 1
        np.testing.assert_array_equal(got, want)
    fresh = mm.run_ort(path, inputs)
    for got, want in zip(fresh, outputs):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.all(np.isfinite(want))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_runs_fast(built, name):
    path = built[1][name]
    inputs, _ = _golden(path)
    sess = mm.ort_session(path)
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), inputs)}
    sess.run(None, feeds)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.050


@pytest.mark.parametrize("name", NAMES)
def test_kind(built, name):
    path = built[1][name]
    model = onnx.load(str(path))
    ops = mm.op_counts(model)
    float_io = all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                   for v in list(model.graph.input) + list(model.graph.output))
    assert float_io
    if mm.MODELS[name].kind == "float":
        assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops
        return
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    per_channel = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
                   and inits.get(n.input[0]) is not None and inits[n.input[0]].dtype == np.int8
                   and inits[n.input[1]].size > 1]
    assert per_channel, "expected per-channel int8 weights"
    rtol, atol = mm.tolerance(name, path)
    assert rtol == 0.0 and 0.0 < atol < 1.0


def test_expected_ops(built):
    paths = built[1]
    ops = {name: mm.op_counts(onnx.load(str(p))) for name, p in paths.items()}
    expect = {
        "cnn_nchw_fp32": ["Conv", "BatchNormalization", "Relu", "Clip", "MaxPool", "Add",
                          "GlobalAveragePool", "Flatten", "Gemm", "Softmax"],
        "conv1d_fp32": ["Conv", "LeakyRelu", "AveragePool", "Sigmoid", "Mul", "ReduceMean", "MatMul", "Add"],
        "transformer_fp32": ["LayerNormalization", "MatMul", "Reshape", "Transpose", "Div", "Softmax",
                             "Erf", "Shape", "Gather", "Unsqueeze", "Concat"],
        "transformer_gelu20_fp32": ["LayerNormalization", "Gelu", "Shape", "Gather", "Unsqueeze", "Concat"],
        "mobile_hswish_resize_fp32": ["HardSwish", "HardSigmoid", "GlobalAveragePool", "Resize", "Concat"],
        "digits_cnn_fp32": ["Conv", "Relu", "MaxPool", "Flatten", "Gemm"],
    }
    for name, needed in expect.items():
        missing = [op for op in needed if op not in ops[name]]
        assert not missing, (name, missing)
    assert "Erf" not in ops["transformer_gelu20_fp32"]


def test_transformer_has_symbolic_batch(built):
    for name in ("transformer_fp32", "transformer_gelu20_fp32"):
        model = onnx.load(str(built[1][name]))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [16, 32]
        reshape_shapes = [n.input[1] for n in model.graph.node if n.op_type == "Reshape"]
        produced_by = {o: n.op_type for n in model.graph.node for o in n.output}
        assert reshape_shapes and all(produced_by.get(s) == "Concat" for s in reshape_shapes)


def test_hostile_names(built):
    model = onnx.load(str(built[1]["hostile_names_fp32"]))
    g = model.graph
    assert len(g.input) == 2 and len(g.output) == 2
    names = ([n.name for n in g.node] + [o for n in g.node for o in n.output] +
             [t.name for t in g.initializer] + [v.name for v in g.input])
    joined = "\x00".join(names)
    for needle in ['"', "\\", "*/", "/*", "//", "\n", " ", "%"]:
        assert needle in joined, repr(needle)
    for exact in ["int", "return", "static", "a.b", "a_b", "a-b", "model_invoke", "model_input",
                  "model_output", "model_run", "main"]:
        assert exact in names, exact
    assert any(n[:1].isdigit() for n in names)
    assert any(not n.isascii() for n in names)
    io_names = [v.name for v in list(g.input) + list(g.output)]
    assert any('"' in n or "\\" in n for n in io_names)


def test_digits_data_and_accuracy(built):
    outdir, paths = built
    path = paths["digits_cnn_fp32"]
    input_name = onnx.load(str(path)).graph.input[0].name
    calib = np.load(outdir / "digits_calib.npz")
    assert calib.files == [input_name]
    assert calib[input_name].shape == (200, 1, 1, 8, 8) and calib[input_name].dtype == np.float32
    test = np.load(outdir / "digits_test.npz")
    x, y = test["x"], test["y"]
    assert x.shape[1:] == (1, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert len(x) == len(y) > 300
    sess = mm.ort_session(path)
    pred = np.array([np.argmax(sess.run(None, {input_name: xi})[0]) for xi in x])
    assert np.mean(pred == y) >= 0.93


def test_deterministic(built, tmp_path):
    outdir, _ = built
    subset = ["cnn_nchw_qdq", "transformer_fp32", "hostile_names_fp32"]
    again = mm.build_all(tmp_path, subset, verbose=False)
    for name in subset:
        for suffix in (".onnx", ".npz"):
            a = (outdir / name).with_suffix(suffix).read_bytes()
            b = again[name].with_suffix(suffix).read_bytes()
            assert a == b, name + suffix
