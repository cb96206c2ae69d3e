"""--target tensorrt: model.trt.onnx (full checker, the source's interface, only zero-point-0 Q/DQ,
onnxruntime on it against onnxruntime on the source), the build scripts (they compile and parse; run
for real only where TensorRT is installed), engine_plan.json, the 2:4 annotation on pruned float kws
and vww, and a float model quantized for TensorRT by edgecc's calibration."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, mlperf_path

pytestmark = pytest.mark.slow
MLPERF_INT8 = ["kws_int8", "vww_int8", "ic_int8", "ad_int8"]
ZOO_QDQ = ["cnn_nchw_qdq", "conv1d_qdq", "mobile_hswish_resize_qdq"]
sys.path.insert(0, os.path.join(ROOT, "bench"))


def compiled(path, out, **options):
    from edgecc.compiler.driver import compile as compile_model

    compile_model(str(path), target="tensorrt", outdir=str(out), emit="c", **options)
    return json.loads((out / "engine_plan.json").read_text()), json.loads((out / "report.json").read_text())


def run_ort(path, feeds):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in s.get_inputs()]
    return s.run(None, dict(zip(names, feeds)))


def golden_inputs(npz, source):
    import onnx

    d = np.load(npz)
    names = [i.name for i in onnx.load(str(source)).graph.input]
    if all(n in d.files for n in names):
        return [d[n] for n in names]
    return [d[k] for k in sorted(k for k in d.files if k.startswith("input"))]


def check_explicit_quantization(model):
    """Every Q/DQ has a zero point of 0; weights' DQ per axis 0 or per tensor; activations' per tensor."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        assert len(n.input) == 3 and not np.any(inits[n.input[2]]), n.name
        axis = next((a.i for a in n.attribute if a.name == "axis"), None)
        if inits[n.input[1]].size > 1:
            assert axis == 0 and n.op_type == "DequantizeLinear" and n.input[0] in inits, n.name


def check_interface(model, source):
    import onnx

    src = onnx.load(str(source)).graph
    for ours, theirs in ((model.graph.input, src.input), (model.graph.output, src.output)):
        assert [v.name for v in ours] == [v.name for v in theirs]
        for a, b in zip(ours, theirs):
            assert a.type.tensor_type.elem_type == b.type.tensor_type.elem_type
            for da, db in zip(a.type.tensor_type.shape.dim, b.type.tensor_type.shape.dim):
                if db.HasField("dim_value"):
                    assert da.dim_value == db.dim_value


def check_scripts(out):
    subprocess.run([sys.executable, "-m", "py_compile", str(out / "build_engine.py")], check=True)
    for script in ("trtexec.sh", "compare.sh"):
        subprocess.run(["sh", "-n", str(out / script)], check=True)
    text = (out / "README.md").read_text()
    assert "build_engine.py" in text and "trtexec.sh" in text and "compare.sh" in text


TRANSFORMERS_QDQ = {"transformer_qdq": "transformer_fp32", "transformer_gelu20_qdq": "transformer_gelu20_fp32"}


@pytest.fixture(scope="module")
def transformers(tmp_path_factory):
    """The tiny transformers (LayerNorm, GELU, attention) quantized as the zoo's QDQ models are."""
    import onnx

    sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
    import make_models

    out = tmp_path_factory.mktemp("transformers")
    for name, src in TRANSFORMERS_QDQ.items():
        onnx.save(make_models.quantize_qdq(make_models.FLOAT_BUILDERS[src]()), str(out / f"{name}.onnx"))
        make_models.write_golden(out / f"{name}.onnx")
    return out


@pytest.mark.parametrize("name", MLPERF_INT8 + list(TRANSFORMERS_QDQ) + ZOO_QDQ)
def test_trt_onnx_runs_in_onnxruntime_like_the_source(name, zoo, transformers, tmp_path):
    import onnx

    if name in MLPERF_INT8:
        source = mlperf_path(name)
    else:
        source = str(transformers / f"{name}.onnx") if name in TRANSFORMERS_QDQ else str(zoo[name])
    out = tmp_path / "trt"
    plan, report = compiled(source, out)
    model = onnx.load(str(out / "model.trt.onnx"))
    onnx.checker.check_model(model, full_check=True)
    check_interface(model, source)
    check_explicit_quantization(model)
    assert plan["int8"] and any(layer["precision"] == "INT8" for layer in plan["layers"])
    assert all(layer["precision"] in ("INT8", "FP16", "FP32") for layer in plan["layers"])
    if name in MLPERF_INT8:  # every convolution and matrix product of the int8 models runs in INT8
        assert all(layer["precision"] == "INT8" for layer in plan["layers"]
                   if layer["kind"] in ("Convolution", "MatrixMultiply")), plan["layers"]
    nodes = {n.name for n in model.graph.node}
    assert sorted(n for layer in plan["layers"] for n in layer["onnx_nodes"]) == sorted(nodes)
    for change in report["tensorrt"]["activations_made_symmetric"]:
        assert change["scale"] >= change["source_scale"] and change["sqnr_change_db"] <= 0
    check_scripts(out)

    feeds = golden_inputs(source.replace(".onnx", ".npz"), source)
    for got, want in zip(run_ort(out / "model.trt.onnx", feeds), run_ort(source, feeds)):
        assert got.dtype == want.dtype and got.shape == want.shape
        if want.dtype.kind == "f":
            span = float(want.max() - want.min()) or 1.0
            assert np.abs(got - want).max() <= 0.02 * span
        else:
            assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max() <= 3
            assert got.reshape(-1).argmax() == want.reshape(-1).argmax()


@pytest.mark.parametrize("stem", ["kws", "vww"])
def test_2_4_pruned_float_models_are_marked_sparse(stem, tmp_path):
    import onnx

    from prune import prune_model

    model = onnx.load(mlperf_path(f"{stem}_fp32"))
    pruned_layers = prune_model(model, 2, 4)
    source = tmp_path / f"{stem}_2of4.onnx"
    onnx.save(model, str(source))
    out = tmp_path / "trt"
    plan, report = compiled(source, out)
    sparse = [layer for layer in plan["layers"] if layer["sparse"]]
    assert len(sparse) == len(pruned_layers) > 0 and plan["sparse_weights"]
    assert all(layer["kind"] in ("Convolution", "MatrixMultiply") for layer in sparse)
    assert "config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)" in (out / "build_engine.py").read_text()
    assert "--sparsity=enable" in (out / "trtexec.sh").read_text()
    assert sum(e["pattern"] == "2:4" for e in report["sparsity"].values()) == len(pruned_layers)

    gold = np.load(mlperf_path(f"{stem}_fp32").replace(".onnx", ".npz"))
    (got,), (want,) = run_ort(out / "model.trt.onnx", [gold["input"]]), run_ort(source, [gold["input"]])
    assert np.abs(got - want).max() <= 1e-3 * float(want.max() - want.min())


def test_a_float_model_quantized_for_tensorrt_keeps_its_accuracy(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
    import make_models
    from edgecc.compiler.quantization import Quantization

    folder = tmp_path / "digits"
    make_models.build_all(str(folder), ["digits_cnn_fp32"], verbose=False)
    source = folder / "digits_cnn_fp32.onnx"
    out = tmp_path / "trt"
    plan, _ = compiled(source, out, quantize=Quantization(calibration=str(folder / "digits_calib.npz")))
    assert plan["int8"]
    test = np.load(folder / "digits_test.npz")
    x, y = test["x"], test["y"]

    def accuracy(path):
        return float(np.mean([run_ort(path, [xi])[0].argmax() == yi for xi, yi in zip(x, y)]))

    assert accuracy(out / "model.trt.onnx") >= accuracy(source) - 0.01


def test_polygraphy_reads_the_golden_input_through_the_data_loader(tmp_path):
    """compare.sh's onnxruntime half, for real (its TensorRT half needs TensorRT)."""
    if shutil.which("polygraphy") is None:
        pytest.skip("polygraphy is not installed")
    out = tmp_path / "trt"
    compiled(mlperf_path("kws_int8"), out)
    env = dict(os.environ, EDGECC_DATA=mlperf_path("kws_int8").replace(".onnx", ".npz"))
    p = subprocess.run(["polygraphy", "run", "model.trt.onnx", "--onnxrt", "--data-loader-script", "data_loader.py",
                        "--save-outputs", "ort.json"], cwd=out, env=env, capture_output=True, text=True)
    assert p.returncode == 0 and "PASSED" in p.stdout + p.stderr, p.stdout + p.stderr


def test_build_engine_runs_where_tensorrt_is_installed(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installable here (NVIDIA's own index only)")
    out = tmp_path / "trt"
    compiled(mlperf_path("kws_int8"), out)
    subprocess.run([sys.executable, "build_engine.py"], cwd=out, check=True)
    assert (out / "model.plan").stat().st_size > 0


def test_names_from_the_model_reach_the_scripts_as_literals(zoo, tmp_path):
    """The hostile-names model (quotes, backslashes, newlines, shell and C syntax in its names)."""
    out = tmp_path / "trt"
    compiled(zoo["hostile_names_fp32"], out)
    check_scripts(out)
    ns = {"__file__": str(out / "build_engine.py"), "__name__": "build_engine"}
    exec(compile((out / "build_engine.py").read_text(), "build_engine.py", "exec"), ns)  # defines, runs nothing
    import onnx

    names = [i.name for i in onnx.load(str(zoo["hostile_names_fp32"])).graph.input]
    assert list(ns["INPUT_SHAPES"]) == names


def test_an_op_tensorrt_does_not_take_is_refused_in_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from conftest import edgecc

    g = helper.make_graph([helper.make_node("Mod", ["a", "b"], ["y"], name="the_mod", fmod=1)], "m",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "mod.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    p = edgecc(str(path), "--target", "tensorrt", "-o", str(tmp_path / "out"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "the_mod" in p.stderr and "Mod" in p.stderr
    assert not (tmp_path / "out").exists()
