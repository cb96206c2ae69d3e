"""Generator of small, realistic ONNX test models for the edgecc test-suite.

The models mimic the kind of graphs found in the acceptance set (exporter-style
float CNNs, 1-D audio nets, a tiny transformer block, MobileNetV3-style blocks,
their QDQ int8 versions, a model with names that are hostile to C, and a small
trained classifier for post-training quantization).  Everything is deterministic
(fixed seeds; the .onnx and .npz files are byte-identical from run to run on the
same machine and package versions).

Usage::

    from make_models import build_all, MODELS, TOLERANCES
    paths = build_all(outdir)            # {name: path of <name>.onnx}

    python tests/models/make_models.py OUTDIR

For every model ``OUTDIR/<name>.onnx`` and ``OUTDIR/<name>.npz`` are written.
The npz holds ``input_0``, ``input_1``, ... (batch 1; ``numpy.random.default_rng(0)``
drawn in input order: standard normal for float inputs, uniform int8 for int8
inputs) and ``output_0``, ... computed by onnxruntime (CPU, one thread,
ORT_ENABLE_ALL).  ``digits_cnn_fp32`` additionally gets ``digits_calib.npz`` and
``digits_test.npz``.
"""

from __future__ import annotations

import collections
import io
import logging
import math
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

GOLDEN_SEED = 0        # inputs of the golden vectors (same convention as mlperf_tiny)
WEIGHT_SEED = 20240    # random weights
CALIB_SEED = 1234      # calibration samples of the QDQ models
N_CALIB = 32
PRODUCER = "edgecc-tests"


# --------------------------------------------------------------------------- metadata

@dataclass(frozen=True)
class ModelInfo:
    kind: str         # "float" (float graph) or "qdq" (QDQ int8 graph with a float interface)
    tolerance: str    # key of TOLERANCES
    opset: int        # default-domain opset of the written model
    description: str


# How closely a compiled model has to reproduce the ORT golden output.
#   fp32        : plain float conv / gemm nets; only summation order may differ.
#   fp32_approx : float nets dominated by exp / erf / sigmoid / layer-norm, where a
#                 compiler may use its own libm or polynomial approximations.
#   qdq         : QDQ int8 nets with float output; ORT requantizes in float, a
#                 compiler may use fixed-point multipliers, so intermediate values may
#                 differ by one step.  atol = atol_lsb * scale of the final
#                 DequantizeLinear (see tolerance()).
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"rtol": 1e-4, "atol": 1e-5},
    "fp32_approx": {"rtol": 1e-3, "atol": 1e-4},
    "qdq": {"rtol": 0.0, "atol_lsb": 2.0},
}

MODELS: dict[str, ModelInfo] = {
    "cnn_nchw_fp32": ModelInfo(
        "float", "fp32", 13,
        "NCHW CNN 1x3x32x32: Conv+BN+Relu, depthwise Conv+Clip(0,6), MaxPool, "
        "SAME_UPPER stride-2 Conv, residual Add, GAP, Flatten, Gemm, Softmax"),
    "conv1d_fp32": ModelInfo(
        "float", "fp32_approx", 17,
        "1-D audio net 1x8x64: dilated Conv1d, LeakyRelu, strided Conv1d, AveragePool1d, "
        "sigmoid gate, ReduceMean, MatMul+Add"),
    "transformer_fp32": ModelInfo(
        "float", "fp32_approx", 17,
        "transformer encoder block [batch,16,32], 4 heads, exporter Gelu (Erf) and "
        "Shape/Gather/Unsqueeze/Concat reshape scaffolding"),
    "transformer_gelu20_fp32": ModelInfo(
        "float", "fp32_approx", 20,
        "same block as transformer_fp32 with the opset-20 Gelu op"),
    "mobile_hswish_resize_fp32": ModelInfo(
        "float", "fp32_approx", 14,
        "MobileNetV3-style 1x3x48x48: HardSwish op and x*HardSigmoid(x), squeeze-excite, "
        "Resize nearest (scales) and linear (sizes), Concat, Conv head "
        "(opset 14: HardSwish does not exist before)"),
    "cnn_nchw_qdq": ModelInfo(
        "qdq", "qdq", 13, "quantize_static QDQ (per-channel int8) of cnn_nchw_fp32"),
    "conv1d_qdq": ModelInfo(
        "qdq", "qdq", 17, "quantize_static QDQ (per-channel int8) of conv1d_fp32"),
    "mobile_hswish_resize_qdq": ModelInfo(
        "qdq", "qdq", 14, "quantize_static QDQ (per-channel int8) of mobile_hswish_resize_fp32"),
    "hostile_names_fp32": ModelInfo(
        "float", "fp32_approx", 11,
        "small CNN+MLP, 2 inputs / 2 outputs, every name hostile to C"),
    "digits_cnn_fp32": ModelInfo(
        "float", "fp32", 21,
        "CNN trained on sklearn digits; input 1x1x8x8 = pixels/16 in [0,1], output logits [1,10]"),
}

QDQ_SOURCES = {
    "cnn_nchw_qdq": "cnn_nchw_fp32",
    "conv1d_qdq": "conv1d_fp32",
    "mobile_hswish_resize_qdq": "mobile_hswish_resize_fp32",
}


def tolerance(name: str, onnx_path: str | os.PathLike | None = None) -> tuple[float, float]:
    """(rtol, atol) for comparing outputs of model `name` with its golden.

    For "qdq" models the atol is atol_lsb times the largest output scale of the
    DequantizeLinear nodes feeding the graph outputs (needs onnx_path)."""
    tol = TOLERANCES[MODELS[name].tolerance]
    if "atol_lsb" not in tol:
        return tol["rtol"], tol["atol"]
    if onnx_path is None:
        raise ValueError("qdq tolerance needs the model path")
    return tol["rtol"], tol["atol_lsb"] * output_scale(onnx.load(str(onnx_path)))


def output_scale(model: onnx.ModelProto) -> float:
    """Largest scale of the DequantizeLinear nodes producing the graph outputs."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    scales = []
    for out in model.graph.output:
        node = producers[out.name]
        if node.op_type != "DequantizeLinear":
            raise ValueError(f"output {out.name!r} is not produced by DequantizeLinear")
        scales.append(float(np.max(inits[node.input[1]])))
    return max(scales)


# --------------------------------------------------------------------------- ORT / IO helpers

def ort_session(model: str | os.PathLike | bytes):
    """onnxruntime CPU session: single thread, default ORT_ENABLE_ALL."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


_ELEM_TO_NP = {
    TensorProto.FLOAT: np.float32,
    TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8,
}


def golden_inputs(model: onnx.ModelProto, seed: int = GOLDEN_SEED) -> list[np.ndarray]:
    """Batch-1 seeded inputs for the graph inputs (symbolic dims pinned to 1)."""
    rng = np.random.default_rng(seed)
    init_names = {t.name for t in model.graph.initializer}
    arrays = []
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
        dtype = _ELEM_TO_NP[tt.elem_type]
        if dtype == np.float32:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
        else:
            info = np.iinfo(dtype)
            arrays.append(rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype))
    return arrays


def run_ort(path: str | os.PathLike, inputs: list[np.ndarray]) -> list[np.ndarray]:
    sess = ort_session(path)
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), inputs)}
    return sess.run(None, feeds)


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """np.savez equivalent with fixed zip timestamps (byte-deterministic)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def write_golden(onnx_path: Path) -> Path:
    model = onnx.load(str(onnx_path))
    inputs = golden_inputs(model)
    outputs = run_ort(onnx_path, inputs)
    arrays = {f"input_{i}": x for i, x in enumerate(inputs)}
    arrays.update({f"output_{i}": y for i, y in enumerate(outputs)})
    npz_path = onnx_path.with_suffix(".npz")
    save_npz(npz_path, arrays)
    return npz_path


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


# --------------------------------------------------------------------------- graph builder

class _Graph:
    """Minimal graph builder producing torch-exporter-like names
    ("/scope/Conv", "/scope/Conv_output_0", "scope.weight")."""

    def __init__(self, seed: int = WEIGHT_SEED):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._used: collections.Counter = collections.Counter()

    def _unique(self, base: str) -> str:
        k = self._used[base]
        self._used[base] += 1
        return base if k == 0 else f"{base}_{k}"

    def init(self, name: str, array) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], scope: str = "", n_out: int = 1, **attrs):
        name = self._unique(f"{scope}/{op_type}")
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, array, scope: str = "") -> str:
        """Constant node, as exporters emit for small literals."""
        name = self._unique(f"{scope}/Constant")
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(
            "Constant", [], [out], name=name, value=numpy_helper.from_array(np.asarray(array))))
        return out

    def he(self, shape, fan_in: int) -> np.ndarray:
        return (self.rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)

    def small(self, shape, scale: float = 0.1) -> np.ndarray:
        return self.rng.uniform(-scale, scale, shape).astype(np.float32)

    def conv(self, x: str, cin: int, cout: int, k, scope: str, *, stride=1, group: int = 1,
             dilation=1, pads=None, auto_pad: str | None = None, bias: bool = True) -> str:
        k = tuple(k) if isinstance(k, (tuple, list)) else (k, k)
        nd = len(k)
        strides = stride if isinstance(stride, (tuple, list)) else (stride,) * nd
        dil = dilation if isinstance(dilation, (tuple, list)) else (dilation,) * nd
        w = self.he((cout, cin // group) + k, fan_in=(cin // group) * int(np.prod(k)))
        key = scope.strip("/").replace("/", ".")
        ins = [x, self.init(f"{key}.weight", w)]
        if bias:
            ins.append(self.init(f"{key}.bias", self.small((cout,))))
        attrs = dict(kernel_shape=list(k), strides=list(strides), dilations=list(dil), group=group)
        if auto_pad is not None:
            attrs["auto_pad"] = auto_pad
        else:
            if pads is None:  # "same" for odd kernels
                pads = [d * (kk - 1) // 2 for d, kk in zip(dil, k)] * 2
            attrs["pads"] = list(pads)
        return self.op("Conv", ins, scope, **attrs)

    def linear(self, x: str, cin: int, cout: int, scope: str) -> str:
        """torch.nn.Linear as exported for >2-D inputs: MatMul + Add."""
        key = scope.strip("/").replace("/", ".")
        w = self.he((cin, cout), fan_in=cin) * np.float32(0.7)
        mm = self.op("MatMul", [x, self.init(f"onnx::MatMul_{key}", w)], scope)
        return self.op("Add", [self.init(f"{key}.bias", self.small((cout,))), mm], scope)

    def model(self, name: str, inputs, outputs, opset: int, doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits, doc_string=doc)
        return make_model(graph, opset)


def make_model(graph: onnx.GraphProto, opset: int) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                              producer_version="1.0",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model, full_check=True)
    return model


def _vi(name: str, shape, elem=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


# --------------------------------------------------------------------------- 1. cnn_nchw_fp32

def build_cnn_nchw_fp32() -> onnx.ModelProto:
    g = _Graph(WEIGHT_SEED + 1)
    # stem: Conv(+bias) -> BatchNormalization -> Relu        [1,16,32,32]
    x = g.conv("input", 3, 16, 3, "/stem/conv")
    c = 16
    bn = g.op("BatchNormalization", [
        x,
        g.init("stem.bn.weight", g.rng.uniform(0.5, 1.5, c).astype(np.float32)),
        g.init("stem.bn.bias", g.small((c,), 0.2)),
        g.init("stem.bn.running_mean", g.small((c,), 0.3)),
        g.init("stem.bn.running_var", g.rng.uniform(0.5, 2.0, c).astype(np.float32)),
    ], "/stem/bn", epsilon=1e-5, momentum=0.9)
    x = g.op("Relu", [bn], "/stem/relu")
    # depthwise Conv -> Clip(0, 6) with min/max as inputs       [1,16,32,32]
    x = g.conv(x, 16, 16, 3, "/dw/conv", group=16)
    x = g.op("Clip", [x, g.init("clip_min", np.array(0.0, np.float32)),
                      g.init("clip_max", np.array(6.0, np.float32))], "/dw/relu6")
    x = g.op("MaxPool", [x], "/pool", kernel_shape=[2, 2], strides=[2, 2])   # [1,16,16,16]
    # residual block: SAME_UPPER stride-2 conv main path + 1x1 stride-2 shortcut  [1,32,8,8]
    main = g.conv(x, 16, 32, 3, "/block/conv1", stride=2, auto_pad="SAME_UPPER")
    main = g.op("Relu", [main], "/block/relu1")
    main = g.conv(main, 32, 32, 3, "/block/conv2")
    short = g.conv(x, 16, 32, 1, "/block/shortcut", stride=2, pads=[0, 0, 0, 0])
    x = g.op("Add", [main, short], "/block/add")
    x = g.op("Relu", [x], "/block/relu2")
    # head
    x = g.op("GlobalAveragePool", [x], "/head/gap")                         # [1,32,1,1]
    x = g.op("Flatten", [x], "/head/flatten", axis=1)                       # [1,32]
    x = g.op("Gemm", [x, g.init("fc.weight", g.he((10, 32), 32)), g.init("fc.bias", g.small((10,)))],
             "/head/fc", alpha=1.0, beta=1.0, transB=1)
    g.nodes.append(helper.make_node("Softmax", [x], ["output"], name="/head/softmax", axis=1))
    return g.model("cnn_nchw", [_vi("input", [1, 3, 32, 32])], [_vi("output", [1, 10])], 13)


# --------------------------------------------------------------------------- 2. conv1d_fp32

def build_conv1d_fp32() -> onnx.ModelProto:
    g = _Graph(WEIGHT_SEED + 2)
    x = g.conv("audio", 8, 16, (5,), "/c1", dilation=2)                     # [1,16,64]
    x = g.op("LeakyRelu", [x], "/c1", alpha=0.1)
    x = g.conv(x, 16, 24, (3,), "/c2", stride=2)                            # [1,24,32]
    x = g.op("Relu", [x], "/c2")
    x = g.op("AveragePool", [x], "/pool", kernel_shape=[3], strides=[2], pads=[1, 1],
             count_include_pad=0)                                           # [1,24,16]
    lin = g.conv(x, 24, 24, (1,), "/gate/lin")
    gate = g.op("Sigmoid", [g.conv(x, 24, 24, (3,), "/gate/sig")], "/gate")
    x = g.op("Mul", [lin, gate], "/gate")                                   # [1,24,16]
    x = g.op("ReduceMean", [x], "/mean", axes=[2], keepdims=0)              # [1,24]
    x = g.op("MatMul", [x, g.init("fc.weight_t", g.he((24, 6), 24))], "/fc")
    g.nodes.append(helper.make_node("Add", [x, g.init("fc.bias", g.small((6,)))], ["logits"],
                                    name="/fc/Add"))
    return g.model("conv1d_audio", [_vi("audio", [1, 8, 64])], [_vi("logits", [1, 6])], 17)


# --------------------------------------------------------------------------- 3. transformers

SEQ, DIM, HEADS = 16, 32, 4
HEAD_DIM = DIM // HEADS


def _dyn_shape(g: _Graph, src: str, tail: list[int], scope: str) -> str:
    """Reshape target [batch, seq, *tail] computed from Shape(src), torch style."""
    shape = g.op("Shape", [src], scope)
    dims = []
    for axis in (0, 1):
        d = g.op("Gather", [shape, g.const(np.array(axis, np.int64), scope)], scope, axis=0)
        dims.append(g.op("Unsqueeze", [d, g.const(np.array([0], np.int64), scope)], scope))
    for t in tail:
        dims.append(g.const(np.array([t], np.int64), scope))
    return g.op("Concat", dims, scope, axis=0)


def _attention(g: _Graph, x: str) -> str:
    s = "/encoder/attn"
    heads = {}
    for which, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        y = g.linear(x, DIM, DIM, f"{s}/{which}_proj")
        y = g.op("Reshape", [y, _dyn_shape(g, x, [HEADS, HEAD_DIM], s)], s)   # [B,16,4,8]
        heads[which] = g.op("Transpose", [y], s, perm=perm)
    scores = g.op("MatMul", [heads["q"], heads["k"]], s)                     # [B,4,16,16]
    scores = g.op("Div", [scores, g.const(np.array(math.sqrt(HEAD_DIM), np.float32), s)], s)
    probs = g.op("Softmax", [scores], s, axis=-1)
    ctx = g.op("MatMul", [probs, heads["v"]], s)                             # [B,4,16,8]
    ctx = g.op("Transpose", [ctx], s, perm=[0, 2, 1, 3])                     # [B,16,4,8]
    ctx = g.op("Reshape", [ctx, _dyn_shape(g, x, [DIM], s)], s)              # [B,16,32]
    return g.linear(ctx, DIM, DIM, f"{s}/out_proj")


def _layer_norm(g: _Graph, x: str, scope: str) -> str:
    key = scope.strip("/").replace("/", ".")
    gamma = g.init(f"{key}.weight", (1.0 + g.small((DIM,), 0.2)).astype(np.float32))
    beta = g.init(f"{key}.bias", g.small((DIM,), 0.1))
    return g.op("LayerNormalization", [x, gamma, beta], scope, axis=-1, epsilon=1e-5)


def _gelu(g: _Graph, x: str, scope: str, use_op: bool) -> str:
    if use_op:
        return g.op("Gelu", [x], scope, approximate="none")
    # x * 0.5 * (1 + erf(x / sqrt(2))), as torch.onnx exports F.gelu before opset 20
    e = g.op("Erf", [g.op("Div", [x, g.const(np.array(math.sqrt(2.0), np.float32), scope)], scope)], scope)
    e = g.op("Add", [e, g.const(np.array(1.0, np.float32), scope)], scope)
    y = g.op("Mul", [x, e], scope)
    return g.op("Mul", [y, g.const(np.array(0.5, np.float32), scope)], scope)


def _transformer(gelu_op: bool, opset: int, name: str) -> onnx.ModelProto:
    g = _Graph(WEIGHT_SEED + 3)   # same weights for both variants
    h = g.op("Add", [_attention(g, _layer_norm(g, "x", "/encoder/ln1")), "x"], "/encoder")
    m = g.linear(_layer_norm(g, h, "/encoder/ln2"), DIM, 2 * DIM, "/encoder/mlp/fc1")
    m = _gelu(g, m, "/encoder/mlp/act", gelu_op)
    m = g.linear(m, 2 * DIM, DIM, "/encoder/mlp/fc2")
    g.nodes.append(helper.make_node("Add", [m, h], ["y"], name="/encoder/Add_1"))
    return g.model(name, [_vi("x", ["batch", SEQ, DIM])], [_vi("y", ["batch", SEQ, DIM])], opset)


def build_transformer_fp32() -> onnx.ModelProto:
    return _transformer(gelu_op=False, opset=17, name="tiny_encoder")


def build_transformer_gelu20_fp32() -> onnx.ModelProto:
    return _transformer(gelu_op=True, opset=20, name="tiny_encoder_gelu20")


# --------------------------------------------------------------------------- 4. mobile_hswish_resize_fp32

def _squeeze_excite(g: _Graph, x: str, c: int, scope: str) -> str:
    s = g.op("GlobalAveragePool", [x], scope)
    s = g.op("Relu", [g.conv(s, c, c // 2, 1, f"{scope}/fc1")], scope)
    s = g.conv(s, c // 2, c, 1, f"{scope}/fc2")
    s = g.op("HardSigmoid", [s], scope, alpha=1.0 / 6.0, beta=0.5)
    return g.op("Mul", [x, s], scope)


def build_mobile_hswish_resize_fp32() -> onnx.ModelProto:
    g = _Graph(WEIGHT_SEED + 4)
    x = g.op("HardSwish", [g.conv("image", 3, 16, 3, "/stem", stride=2)], "/stem")   # [1,16,24,24]
    # expand 1x1 + hardswish written as x * HardSigmoid(x) (torch export below opset 14)
    t = g.conv(x, 16, 16, 1, "/block/expand")
    t = g.op("Mul", [t, g.op("HardSigmoid", [t], "/block/act1", alpha=1.0 / 6.0, beta=0.5)], "/block/act1")
    t = g.op("HardSwish", [g.conv(t, 16, 16, 3, "/block/dw", group=16)], "/block/act2")
    se = _squeeze_excite(g, t, 16, "/block/se")                                     # [1,16,24,24]
    # branch 1: stride-2 conv, nearest x2 upsampling with a scales input
    d1 = g.op("Relu", [g.conv(t, 16, 16, 3, "/down1", stride=2)], "/down1")         # [1,16,12,12]
    u1 = g.op("Resize", [d1, "", g.init("up1.scales", np.array([1, 1, 2, 2], np.float32))], "/up1",
              mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    # branch 2: another stride-2 conv, bilinear resize to a sizes input
    d2 = g.op("Relu", [g.conv(d1, 16, 8, 3, "/down2", stride=2)], "/down2")         # [1,8,6,6]
    u2 = g.op("Resize", [d2, "", "", g.init("up2.sizes", np.array([1, 8, 24, 24], np.int64))], "/up2",
              mode="linear", coordinate_transformation_mode="half_pixel")
    cat = g.op("Concat", [se, u1, u2], "/fuse", axis=1)                             # [1,40,24,24]
    key = "head"
    g.nodes.append(helper.make_node(
        "Conv", [cat, g.init(f"{key}.weight", g.he((4, 40, 1, 1), 40)), g.init(f"{key}.bias", g.small((4,)))],
        ["segmap"], name="/head/Conv", kernel_shape=[1, 1]))
    return g.model("mobile_hswish_resize", [_vi("image", [1, 3, 48, 48])], [_vi("segmap", [1, 4, 24, 24])], 14)


# --------------------------------------------------------------------------- 5. QDQ versions

class RandomCalibrationReader(CalibrationDataReader):
    """N_CALIB seeded standard-normal samples for the (single) float model input."""

    def __init__(self, model: onnx.ModelProto, n: int = N_CALIB, seed: int = CALIB_SEED):
        inp = model.graph.input[0]
        shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
        rng = np.random.default_rng(seed)
        self._items = iter([{inp.name: rng.standard_normal(shape).astype(np.float32)}
                            for _ in range(n)])

    def get_next(self):
        return next(self._items, None)


class SamplesReader(CalibrationDataReader):
    """Given samples, one feed each: {input name: [N, *input shape]} gives N feeds."""

    def __init__(self, samples: dict):
        n = len(next(iter(samples.values())))
        self._items = iter([{k: v[i] for k, v in samples.items()} for i in range(n)])

    def get_next(self):
        return next(self._items, None)


def ort_quantize_static(source, out, reader: CalibrationDataReader, weights: str = "int8",
                        preprocess: bool = False):
    """onnxruntime's quantize_static as edgecc is compared with it: QDQ, per-channel weights (QInt8, or QInt4
    with weights="int4"), int8 activations, MinMax, on the reader's samples; quant_pre_process first when
    `preprocess` (its symbolic shape inference skipped: it needs sympy, and our shapes are static). Returns out."""
    if preprocess:
        pre = str(out) + ".pre.onnx"
        quant_pre_process(str(source), pre, skip_symbolic_shape=True)
        source = pre
    quantize_static(str(source), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt4 if weights == "int4" else QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    return out


def quantize_qdq(float_model: onnx.ModelProto, preprocess: bool = True) -> onnx.ModelProto:
    """ort_quantize_static (per-channel int8) on N_CALIB seeded random samples, pre-processed.

    Pre-processing skips the symbolic shape inference (our models' shapes are static): with it, the
    step needs sympy and silently did nothing where sympy was missing, leaving BatchNormalization
    unfused, so the zoo's QDQ models differed from machine to machine. preprocess=False quantizes the
    model as it is (a BatchNormalization after a conv stays a layer of its own)."""
    quant_logger = logging.getLogger()
    old_level = quant_logger.level
    quant_logger.setLevel(logging.ERROR)   # silence "consider pre-processing" style warnings
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src, out = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "qdq.onnx")
            onnx.save(float_model, src)
            ort_quantize_static(src, out, RandomCalibrationReader(float_model), preprocess=preprocess)
            model = onnx.load(out)
    finally:
        quant_logger.setLevel(old_level)
    onnx.checker.check_model(model, full_check=True)
    return model


# --------------------------------------------------------------------------- 6. hostile_names_fp32

HOSTILE = {
    "in0": "model_input",
    "in1": '1st input "quoted" \\ back\\slash',
    "out0": "model_output",
    "out1": "main",
    "w_conv": "int",
    "b_conv": "static",
    "conv_out": "a.b",
    "relu_out": "a_b",
    "pool_out": "a-b",
    "flat_out": "// line comment",
    "w_fc": "/* open comment",
    "b_fc": "*/ close comment",
    "fc_out": "model_invoke",
    "add_out": "model_run",
    "relu2_out": "return",
    "scale": "ünïcödé_張量_🙂",
    "tanh_out": "new\nline",
    "sig_out": "has spaces  and\ttab",
    "gain": "%s%n%d printf ??/ trigraph",
    "long": "x" * 200 + " " + "y" * 100,
}


def build_hostile_names_fp32() -> onnx.ModelProto:
    h = HOSTILE
    rng = np.random.default_rng(WEIGHT_SEED + 6)

    def f32(a):
        return np.asarray(a, np.float32)

    inits = [
        numpy_helper.from_array(f32(rng.standard_normal((4, 2, 3, 3)) * math.sqrt(2 / 18)), h["w_conv"]),
        numpy_helper.from_array(f32(rng.uniform(-0.1, 0.1, 4)), h["b_conv"]),
        numpy_helper.from_array(f32(rng.standard_normal((5, 36)) * math.sqrt(2 / 36)), h["w_fc"]),
        numpy_helper.from_array(f32(rng.uniform(-0.1, 0.1, 5)), h["b_fc"]),
        numpy_helper.from_array(f32(rng.uniform(0.5, 1.5, 5)), h["scale"]),
        numpy_helper.from_array(f32(1.5), h["gain"]),
    ]
    node = helper.make_node
    nodes = [
        node("Conv", [h["in0"], h["w_conv"], h["b_conv"]], [h["conv_out"]], name='Conv "1" \\ */',
             kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("Relu", [h["conv_out"]], [h["relu_out"]], name="int"),
        node("MaxPool", [h["relu_out"]], [h["pool_out"]], name="return", kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", [h["pool_out"]], [h["flat_out"]], name=""),
        node("Gemm", [h["flat_out"], h["w_fc"], h["b_fc"]], [h["fc_out"]], name="static", transB=1),
        node("Add", [h["fc_out"], h["in1"]], [h["add_out"]], name="model_run"),
        node("Relu", [h["add_out"]], [h["relu2_out"]], name="a.b"),
        node("Mul", [h["relu2_out"], h["scale"]], [h["long"]], name="a_b"),
        node("Tanh", [h["long"]], [h["tanh_out"]], name="a-b"),
        node("Identity", [h["tanh_out"]], [h["out0"]], name="main"),
        node("Sigmoid", [h["fc_out"]], [h["sig_out"]], name="9 lives /* \n */ \"x\""),
        node("Mul", [h["sig_out"], h["gain"]], [h["out1"]], name="model_output"),
    ]
    graph = helper.make_graph(
        nodes, 'hostile "graph" */ \\n', [_vi(h["in0"], [1, 2, 6, 6]), _vi(h["in1"], [1, 5])],
        [_vi(h["out0"], [1, 5]), _vi(h["out1"], [1, 5])], inits,
        doc_string='doc with */ and /* and "quotes" and \\ and\nnewline')
    return make_model(graph, 11)


# --------------------------------------------------------------------------- 7. digits_cnn_fp32

def _load_digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]   # [N,1,8,8] in [0,1]
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)


def _im2col(x: np.ndarray) -> np.ndarray:
    """3x3, pad 1, stride 1: [N,C,H,W] -> [N, C*9, H*W] (C-major, then kh, kw)."""
    n, c, hh, ww = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, i:i + hh, j:j + ww] for i in range(3) for j in range(3)], axis=2)
    return cols.reshape(n, c * 9, hh * ww)


def _col2im(cols: np.ndarray, shape) -> np.ndarray:
    n, c, hh, ww = shape
    cols = cols.reshape(n, c, 9, hh, ww)
    xp = np.zeros((n, c, hh + 2, ww + 2), cols.dtype)
    for idx in range(9):
        i, j = divmod(idx, 3)
        xp[:, :, i:i + hh, j:j + ww] += cols[:, :, idx]
    return xp[:, :, 1:-1, 1:-1]


class _DigitsCNN:
    """conv3x3(1->8)-relu-maxpool2 -> conv3x3(8->16)-relu-maxpool2 -> fc(64->10), numpy backprop."""

    def __init__(self, rng: np.random.Generator):
        self.p = {
            "w1": rng.standard_normal((8, 9)) * math.sqrt(2 / 9), "b1": np.zeros(8),
            "w2": rng.standard_normal((16, 72)) * math.sqrt(2 / 72), "b2": np.zeros(16),
            "w3": rng.standard_normal((10, 64)) * math.sqrt(1 / 64), "b3": np.zeros(10),
        }

    @staticmethod
    def _conv_relu_pool(x, w, b):
        n, _, hh, ww = x.shape
        cols = _im2col(x)
        z = np.matmul(w, cols).reshape(n, -1, hh, ww) + b[None, :, None, None]
        a = np.maximum(z, 0)
        blocks = a.reshape(n, a.shape[1], hh // 2, 2, ww // 2, 2)
        pooled = blocks.max(axis=(3, 5))
        return pooled, (x.shape, cols, z, blocks, pooled)

    @staticmethod
    def _conv_relu_pool_back(dpool, w, cache):
        xshape, cols, z, blocks, pooled = cache
        mask = blocks == pooled[:, :, :, None, :, None]
        da = (mask * dpool[:, :, :, None, :, None]).reshape(z.shape) * (z > 0)
        n = da.shape[0]
        da2 = da.reshape(n, da.shape[1], -1)
        dw = np.matmul(da2, cols.transpose(0, 2, 1)).sum(axis=0)
        db = da2.sum(axis=(0, 2))
        dx = _col2im(np.matmul(w.T, da2), xshape)
        return dx, dw, db

    def forward(self, x, keep=False):
        p = self.p
        h1, c1 = self._conv_relu_pool(x, p["w1"], p["b1"])
        h2, c2 = self._conv_relu_pool(h1, p["w2"], p["b2"])
        f = h2.reshape(len(x), -1)
        logits = f @ p["w3"].T + p["b3"]
        return (logits, (c1, c2, f, h2.shape)) if keep else logits

    def grads(self, x, y):
        p = self.p
        logits, (c1, c2, f, h2shape) = self.forward(x, keep=True)
        prob = np.exp(logits - logits.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        dlog = prob
        dlog[np.arange(len(y)), y] -= 1.0
        dlog /= len(y)
        g = {"w3": dlog.T @ f, "b3": dlog.sum(axis=0)}
        dh1, g["w2"], g["b2"] = self._conv_relu_pool_back((dlog @ p["w3"]).reshape(h2shape), p["w2"], c2)
        _, g["w1"], g["b1"] = self._conv_relu_pool_back(dh1, p["w1"], c1)
        return g

    def train(self, x, y, rng, epochs=20, batch=32, lr=3e-3):
        m = {k: np.zeros_like(v) for k, v in self.p.items()}
        v = {k: np.zeros_like(val) for k, val in self.p.items()}
        step = 0
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch):
                idx = order[start:start + batch]
                step += 1
                for k, gk in self.grads(x[idx], y[idx]).items():   # Adam
                    m[k] = 0.9 * m[k] + 0.1 * gk
                    v[k] = 0.999 * v[k] + 0.001 * gk * gk
                    mh = m[k] / (1 - 0.9 ** step)
                    vh = v[k] / (1 - 0.999 ** step)
                    self.p[k] -= lr * mh / (np.sqrt(vh) + 1e-8)


def _digits_onnx(p: dict[str, np.ndarray]) -> onnx.ModelProto:
    g = _Graph()
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    x = g.op("Conv", ["input", g.init("conv1.weight", f32(p["w1"].reshape(8, 1, 3, 3))),
                      g.init("conv1.bias", f32(p["b1"]))], "/conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = g.op("MaxPool", [g.op("Relu", [x], "/relu1")], "/pool1", kernel_shape=[2, 2], strides=[2, 2])
    x = g.op("Conv", [x, g.init("conv2.weight", f32(p["w2"].reshape(16, 8, 3, 3))),
                      g.init("conv2.bias", f32(p["b2"]))], "/conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = g.op("MaxPool", [g.op("Relu", [x], "/relu2")], "/pool2", kernel_shape=[2, 2], strides=[2, 2])
    x = g.op("Flatten", [x], "/flatten", axis=1)
    g.nodes.append(helper.make_node("Gemm", [x, g.init("fc.weight", f32(p["w3"])), g.init("fc.bias", f32(p["b3"]))],
                                    ["logits"], name="/fc/Gemm", transB=1))
    return g.model("digits_cnn", [_vi("input", [1, 1, 8, 8])], [_vi("logits", [1, 10])], 21,
                   doc="sklearn load_digits CNN; input = pixel / 16 (range [0, 1]); output logits")


def build_digits_cnn_fp32() -> onnx.ModelProto:
    x_tr, _, y_tr, _ = _load_digits_split()
    net = _DigitsCNN(np.random.default_rng(WEIGHT_SEED + 7))
    net.train(x_tr.astype(np.float64), y_tr, np.random.default_rng(WEIGHT_SEED + 8))
    return _digits_onnx(net.p)


def write_digits_data(outdir: Path, onnx_path: Path) -> float:
    """digits_calib.npz (200 training images) and digits_test.npz; returns ORT test accuracy."""
    x_tr, x_te, y_tr, y_te = _load_digits_split()
    input_name = onnx.load(str(onnx_path)).graph.input[0].name
    save_npz(outdir / "digits_calib.npz", {input_name: x_tr[:200, None]})   # [200,1,1,8,8]
    save_npz(outdir / "digits_test.npz", {"x": x_te[:, None], "y": y_te})
    sess = ort_session(onnx_path)
    pred = np.array([np.argmax(sess.run(None, {input_name: xi})[0]) for xi in x_te[:, None]])
    return float(np.mean(pred == y_te))


# --------------------------------------------------------------------------- driver

FLOAT_BUILDERS: dict[str, Callable[[], onnx.ModelProto]] = {
    "cnn_nchw_fp32": build_cnn_nchw_fp32,
    "conv1d_fp32": build_conv1d_fp32,
    "transformer_fp32": build_transformer_fp32,
    "transformer_gelu20_fp32": build_transformer_gelu20_fp32,
    "mobile_hswish_resize_fp32": build_mobile_hswish_resize_fp32,
    "hostile_names_fp32": build_hostile_names_fp32,
    "digits_cnn_fp32": build_digits_cnn_fp32,
}


def build_all(outdir: str | os.PathLike, names: list[str] | None = None,
              verbose: bool = True) -> dict[str, Path]:
    """Write <name>.onnx and <name>.npz for every model (or the given subset)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    wanted = list(MODELS) if names is None else list(names)
    unknown = set(wanted) - set(MODELS)
    if unknown:
        raise KeyError(f"unknown models: {sorted(unknown)}")
    float_models: dict[str, onnx.ModelProto] = {}
    paths: dict[str, Path] = {}
    for name in wanted:
        if name in QDQ_SOURCES:
            src = QDQ_SOURCES[name]
            if src not in float_models:
                float_models[src] = FLOAT_BUILDERS[src]()
            model = quantize_qdq(float_models[src])
        else:
            if name not in float_models:
                float_models[name] = FLOAT_BUILDERS[name]()
            model = float_models[name]
        path = outdir / f"{name}.onnx"
        onnx.save(model, str(path))
        write_golden(path)
        paths[name] = path
        if name == "digits_cnn_fp32":
            acc = write_digits_data(outdir, path)
            if verbose:
                print(f"digits_cnn_fp32 test accuracy: {acc:.4f}")
    return paths


def describe(path: Path) -> str:
    model = onnx.load(str(path))
    gold = np.load(path.with_suffix(".npz"))
    ins = [gold[k].shape for k in gold.files if k.startswith("input_")]
    outs = [gold[k].shape for k in gold.files if k.startswith("output_")]
    ops = ", ".join(f"{k} {v}" for k, v in op_counts(model).items())
    return (f"{path.stem}: opset {model.opset_import[0].version}, {path.stat().st_size} bytes, "
            f"in {ins}, out {outs}\n    {ops}")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTDIR", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    paths = build_all(argv[1])
    elapsed = time.perf_counter() - t0
    for path in paths.values():
        print(describe(path))
    print(f"built {len(paths)} models in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
