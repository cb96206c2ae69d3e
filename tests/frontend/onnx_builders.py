"""Small helpers the frontend tests use to write ONNX models and check them against onnxruntime."""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32, I8, U8, I64 = TensorProto.FLOAT, TensorProto.INT8, TensorProto.UINT8, TensorProto.INT64


def vi(name, shape, elem=F32):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def model(nodes, inputs, outputs, inits=(), opset=17, domains=()):
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializer=list(inits))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 8
    return m


def save(m, folder, name="model.onnx") -> str:
    path = os.path.join(str(folder), name)
    onnx.save(m, path)
    return path


def ort_outputs(path, inputs: list) -> list:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), inputs)})


def interp_outputs(graph, inputs: list) -> list:
    import pytest

    interp = pytest.importorskip("edgecc.ir.interp")
    return interp.run(graph, inputs)


def assert_matches_ort(path, graph, inputs, rtol=1e-5, atol=1e-6):
    for got, want in zip(interp_outputs(graph, inputs), ort_outputs(path, inputs)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol)


def kinds(graph) -> list:
    return [op.kind for op in graph.ops]
