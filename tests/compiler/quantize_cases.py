"""A small float ONNX CNN and calibration data for the quantization tests; the digits CNN of
tests/models/make_models.py with its data, onnxruntime on it, and its test images through the generated C."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def float_cnn(path) -> str:
    """conv-relu, residual add, max pool, conv with leaky relu, global average pool, flatten, gemm,
    softmax: a bit of everything the int8 scheme covers."""
    rng = np.random.default_rng(3)

    def init(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["sum"], name="residual"),
        helper.make_node("MaxPool", ["sum"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w3", "b3"], ["c3"], name="conv3"),
        helper.make_node("LeakyRelu", ["c3"], ["l3"], name="leaky", alpha=0.1),
        helper.make_node("GlobalAveragePool", ["l3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=1),
    ]
    inits = [init("w1", 4, 2, 3, 3), init("b1", 4, scale=0.1), init("w2", 4, 4, 3, 3), init("w3", 6, 4, 1, 1),
             init("b3", 6, scale=0.1), init("w4", 5, 6), init("b4", 5, scale=0.1)]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5]),
                               helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 5])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return str(path)


def calibration(n=32, seed=0):
    return {"x": np.random.default_rng(seed).random((n, 1, 2, 8, 8)).astype(np.float32)}


def assert_m7_matches_host(m7_dir, host_dir, graph, images, workdir) -> None:
    """The emulated Cortex-M7 build in m7_dir gives the very outputs of the host build in host_dir, image
    by image (each reshaped to the graph's input)."""
    import os

    from edgecc.backends.c import emulator, runner

    types = [(v.type.np_dtype, v.type.shape) for v in graph.outputs]
    e, h = os.path.join(str(workdir), "e"), os.path.join(str(workdir), "h")
    os.makedirs(e)
    os.makedirs(h)
    elf, _ = emulator.build(str(m7_dir), e, "cortex-m7", 1, 1)
    exe = runner.build(str(host_dir), h, 1, 1)
    for xi in images:
        feed = [xi.reshape(graph.inputs[0].type.shape).astype(np.float32)]
        on_m7 = emulator.run(elf, e, "cortex-m7", feed, types)[0][0]
        np.testing.assert_array_equal(on_m7, runner.run(exe, h, feed, types)[0])


DIGITS = "digits_cnn_fp32"


def digits_model(folder) -> dict:
    """The digits CNN built in `folder`: {"path", "calib" ({input name: [200, ...]}), "x", "labels"}."""
    import os
    import sys

    from conftest import ROOT

    sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
    import make_models

    make_models.build_all(str(folder), [DIGITS], verbose=False)
    test = np.load(os.path.join(str(folder), "digits_test.npz"))
    return dict(path=os.path.join(str(folder), f"{DIGITS}.onnx"),
                calib=dict(np.load(os.path.join(str(folder), "digits_calib.npz"))), x=test["x"], labels=test["y"])


def ort_logits(path, x, optimize=True) -> np.ndarray:
    """onnxruntime on every sample of x (with its graph optimizations, or node by node)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {s.get_inputs()[0].name: xi})[0] for xi in x])


def run_many(srcdir, x, out_type, work) -> np.ndarray:
    """Every sample of x through the C on the host (the acceptance harness's cbench host --many): [N, -1]."""
    import os

    from conftest import load_cbench

    gold, save = os.path.join(work, "many.npz"), os.path.join(work, "out.npy")
    np.savez(gold, input_0=x, output_shape=np.asarray(out_type.shape), output_dtype=np.asarray(str(out_type.np_dtype)))
    res = load_cbench().run("host", srcdir, gold, "model", 1, [], None, 1, save)
    assert res.get("ok"), res
    return np.load(save).reshape(len(x), -1)
