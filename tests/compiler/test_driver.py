"""The Python API: load .onnx / .edgeir, compile to IR or C, outputs written atomically."""
import os

import onnx
import pytest
from onnx import TensorProto, helper

from conftest import mlperf_path
from edgecc.compiler import driver
from edgecc.compiler.output import atomic_directory, write_file_atomic
from edgecc.ir import EdgeccError, Graph


def relu_onnx(folder):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = os.path.join(str(folder), "relu.onnx")
    onnx.save(m, path)
    return path


def test_load_onnx_and_edgeir_agree(tmp_path):
    pytest.importorskip("edgecc.ir.parser")
    from edgecc.ir import print_graph

    g = driver.load(mlperf_path("ad_int8"))
    art = driver.compile(g, emit="ir", outdir=str(tmp_path / "ad.edgeir"))
    assert art.paths == [str(tmp_path / "ad.edgeir")] and print_graph(art.graph) == print_graph(g)
    again = driver.load(tmp_path / "ad.edgeir")
    assert print_graph(again) == art.ir_text


def test_compile_ir_without_outdir_writes_nothing(tmp_path):
    pytest.importorskip("edgecc.ir.printer")
    art = driver.compile(relu_onnx(tmp_path), emit="ir")
    assert art.paths == [] and "relu(" in art.ir_text and isinstance(art.graph, Graph)


def test_compile_ir_into_an_existing_directory(tmp_path):
    pytest.importorskip("edgecc.ir.printer")
    art = driver.compile(relu_onnx(tmp_path), emit="ir", outdir=str(tmp_path), name="net")
    assert art.paths == [str(tmp_path / "net.edgeir")]


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(EdgeccError, match="unknown output kind"):
        driver.compile(relu_onnx(tmp_path), emit="asm")
    with pytest.raises(EdgeccError, match="no such file"):
        driver.load(tmp_path / "gone.edgeir")
    with pytest.raises(EdgeccError, match="--input-shape applies to ONNX"):
        driver.load(tmp_path / "gone.edgeir", {"x": [1]})


class FakeBackend:
    """Writes two files, or fails halfway when told to."""

    def __init__(self, fail):
        self.fail = fail

    def emit(self, graph, outdir, name="model"):
        os.makedirs(outdir, exist_ok=True)
        first = os.path.join(outdir, f"{name}.h")
        with open(first, "w") as f:
            f.write("// header\n")
        if self.fail:
            raise EdgeccError("the arena does not fit", node="conv1", op="conv")
        second = os.path.join(outdir, f"{name}.c")
        with open(second, "w") as f:
            f.write("// source\n")
        return [first, second]


@pytest.fixture
def fake_c(monkeypatch):
    registry = pytest.importorskip("edgecc.backends.registry")
    pipeline = pytest.importorskip("edgecc.compiler.pipeline")
    state = {"fail": False}
    monkeypatch.setattr(registry, "backend_for", lambda target, optimize="balanced": FakeBackend(state["fail"]))
    monkeypatch.setattr(pipeline, "lower", lambda graph, target, **options: graph)
    return state


def test_emit_c_lands_in_the_directory(tmp_path, fake_c):
    out = tmp_path / "deep" / "out"
    art = driver.compile(relu_onnx(tmp_path), emit="c", outdir=str(out), name="net")
    assert art.paths == sorted([str(out / "net.c"), str(out / "net.h")])
    assert sorted(os.listdir(out)) == ["net.c", "net.h"]
    assert sorted(os.listdir(tmp_path / "deep")) == ["out"], "no temporary directory is left"


def test_failed_emit_leaves_nothing(tmp_path, fake_c):
    fake_c["fail"] = True
    out = tmp_path / "deep" / "out"
    with pytest.raises(EdgeccError):
        driver.compile(relu_onnx(tmp_path), emit="c", outdir=str(out))
    assert not (tmp_path / "deep").exists()


def test_emit_into_an_existing_directory_keeps_other_files(tmp_path, fake_c):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "net.c").write_text("old")
    driver.compile(relu_onnx(tmp_path), emit="c", outdir=str(out), name="net")
    assert sorted(os.listdir(out)) == ["net.c", "net.h", "notes.txt"]
    assert (out / "net.c").read_text() == "// source\n" and (out / "notes.txt").read_text() == "mine"
    fake_c["fail"] = True
    with pytest.raises(EdgeccError):
        driver.compile(relu_onnx(tmp_path), emit="c", outdir=str(out), name="net")
    assert (out / "net.c").read_text() == "// source\n"
    assert sorted(os.listdir(tmp_path)) == ["out", "relu.onnx"]


def test_atomic_file_replaces_and_cleans_up(tmp_path):
    dest = tmp_path / "a" / "f.txt"
    write_file_atomic(str(dest), "one")
    write_file_atomic(str(dest), "two")
    assert dest.read_text() == "two" and os.listdir(dest.parent) == ["f.txt"]
    with pytest.raises(EdgeccError, match="is a directory"):
        write_file_atomic(str(tmp_path / "a"), "x")


def test_atomic_directory_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(EdgeccError, match="not a directory"):
        with atomic_directory(str(tmp_path / "f")):
            pass
