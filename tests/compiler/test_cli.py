"""The command line in a subprocess: user errors are one line on stderr with exit status 2, no
traceback and nothing at the output path; usage errors exit 2; --emit ir writes the IR."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import edgecc, mlperf_path


def tiny_model(nodes=None, domains=(), inits=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph(nodes or [helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y], list(inits))
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 8
    return m


def truncated(folder):
    data = tiny_model().SerializeToString()
    (folder / "model.onnx").write_bytes(data[: len(data) // 2])
    return folder / "model.onnx"


def text_file(folder):
    (folder / "model.onnx").write_text("hello, I am not a model\n")
    return folder / "model.onnx"


def missing(folder):
    return folder / "missing.onnx"


def unknown_domain(folder):
    m = tiny_model([helper.make_node("Magic", ["x"], ["y"], name="m0", domain="com.example")], ["com.example"])
    onnx.save(m, folder / "model.onnx")
    return folder / "model.onnx"


def escaping_external_data(folder):
    (folder / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    inner = folder / "model"
    inner.mkdir()
    w = numpy_helper.from_array(np.ones((1, 4), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../secret.bin")
    onnx.save(tiny_model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[w]), inner / "model.onnx")
    return inner / "model.onnx"


BAD_MODELS = [truncated, text_file, missing, unknown_domain, escaping_external_data]


@pytest.mark.parametrize("make,emit", [(m, "c") for m in BAD_MODELS] + [(truncated, "ir"), (unknown_domain, "ir")],
                         ids=lambda a: getattr(a, "__name__", a))
def test_user_error_is_one_line_and_leaves_nothing(tmp_path, make, emit):
    path = make(tmp_path)
    out = tmp_path / "out" / ("kws" if emit == "c" else "kws.edgeir")
    r = edgecc(path, "--emit", emit, "-o", out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgecc: error: "), r.stderr
    assert "Traceback" not in r.stderr and str(path) in lines[0]
    assert not out.exists() and not (tmp_path / "out").exists()


def test_unknown_domain_names_node_and_op(tmp_path):
    r = edgecc(unknown_domain(tmp_path), "--emit", "ir")
    assert r.stderr.strip().endswith("node 'm0' (Magic): op from unknown domain 'com.example' is not supported")


def test_debug_shows_the_traceback(tmp_path):
    r = edgecc(missing(tmp_path), "--debug")
    assert r.returncode != 0 and "Traceback" in r.stderr


@pytest.mark.parametrize("args", [[], ["m.onnx", "--emit", "asm"], ["m.onnx", "--input-shape", "x=1,a"],
                                  ["m.onnx", "--input-shape", "1,2"], ["m.onnx", "--bogus"]])
def test_usage_errors_exit_2(args):
    assert edgecc(*args).returncode == 2


def test_emit_ir_to_stdout_and_file(tmp_path):
    pytest.importorskip("edgecc.ir.printer")
    r = edgecc(mlperf_path("kws_int8"), "--emit", "ir")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("graph @kws_int8(") and " = conv(" in r.stdout
    out = tmp_path / "sub" / "kws.edgeir"
    r = edgecc(mlperf_path("kws_int8"), "--emit", "ir", "-o", out)
    assert r.returncode == 0 and r.stdout == "" and out.read_text() == edgecc(mlperf_path("kws_int8"), "--emit",
                                                                               "ir").stdout
    assert [p.name for p in out.parent.iterdir()] == ["kws.edgeir"], "no temporary file is left"


def test_input_shape_option(tmp_path):
    pytest.importorskip("edgecc.ir.printer")
    m = tiny_model()
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "n"
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "n"
    onnx.save(m, tmp_path / "m.onnx")
    r = edgecc(tmp_path / "m.onnx", "--emit", "ir")
    assert r.returncode == 2 and "--input-shape x=" in r.stderr
    r = edgecc(tmp_path / "m.onnx", "--emit", "ir", "--input-shape", "x=1,6")
    assert r.returncode == 0 and "tensor<1x6xf32>" in r.stdout


def test_targets_lists_host():
    r = edgecc("targets")
    assert r.returncode == 0
    if r.stdout:
        assert any(line.split()[0] == "host" for line in r.stdout.splitlines())
