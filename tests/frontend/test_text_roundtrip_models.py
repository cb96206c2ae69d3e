"""Every real model (MLPerf Tiny) and every model of our zoo lifts, verifies, prints, and parses
back to the byte-identical text; the parsed graph computes the same numbers."""
import numpy as np
import pytest

from conftest import MLPERF_STEMS, mlperf_path
from edgecc.compiler.frontend import load_onnx
from edgecc.ir import parse, print_graph, verify
from edgecc.ir.interp import run

ZOO = ["cnn_nchw_fp32", "conv1d_fp32", "transformer_fp32", "transformer_gelu20_fp32", "mobile_hswish_resize_fp32",
       "cnn_nchw_qdq", "conv1d_qdq", "mobile_hswish_resize_qdq", "hostile_names_fp32", "digits_cnn_fp32"]


def roundtrip(path):
    g = load_onnx(str(path))
    verify(g)
    text = print_graph(g)
    again = parse(text, "model.edgeir")
    assert print_graph(again) == text
    return g, again


@pytest.mark.parametrize("stem", MLPERF_STEMS)
def test_mlperf_roundtrip(stem):
    g, again = roundtrip(mlperf_path(stem))
    x = np.load(mlperf_path(stem, "npz"))["input"]
    for a, b in zip(run(g, [x]), run(again, [x])):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_roundtrip(zoo, name):
    roundtrip(zoo[name])
