"""IR op kinds as ONNX nodes (opset 17): the op type, its attributes and its constant inputs, as data.

ONNX_OPS maps an IR kind to (ONNX op type, form), where form(op) gives (attributes, consts): consts
are the inputs ONNX takes as tensors where the IR keeps attributes (Reshape's shape, Slice's
starts, Clip's bounds, ...), as {input position: array}. Kinds whose ONNX form is more than one
node (fully_connected, fused activations) are the writer's.
"""
from __future__ import annotations

import math

import numpy as np

OPSET = 17
INT64_MIN = -2 ** 63


def _i64(values) -> np.ndarray:
    return np.asarray(values, np.int64)


def _f32(value) -> np.ndarray:
    return np.asarray(value, np.float32)


def _none(op):
    return {}, {}


def _pick(*names, **renamed):
    """Attributes copied by name (renamed: ONNX name = IR name)."""
    def form(op):
        out = {n: op.attrs[n] for n in names}
        out.update({onnx_name: op.attrs[ir_name] for onnx_name, ir_name in renamed.items()})
        return out, {}
    return form


def _pool(op):
    a = op.attrs
    out = {"kernel_shape": a["kernel_shape"], "strides": a["strides"], "pads": a["pads"], "ceil_mode": a["ceil_mode"]}
    if op.kind == "max_pool":
        out.update(dilations=a["dilations"], storage_order=a["storage_order"])
    else:
        out["count_include_pad"] = a["count_include_pad"]
    return out, {}


def bounds(lo: float, hi: float) -> dict:
    """Clip's min / max inputs (an infinite bound is left out)."""
    consts = {}
    if math.isfinite(lo):
        consts[1] = _f32(lo)
    if math.isfinite(hi):
        consts[2] = _f32(hi)
    return consts


def _clip(op):
    return {}, bounds(op.attrs["min"], op.attrs["max"])


def _slice(op):
    a = op.attrs
    # the IR's end -1 with a negative step means "through index 0"; ONNX spells that INT64_MIN
    ends = [INT64_MIN if e == -1 and s < 0 else e for e, s in zip(a["ends"], a["steps"])]
    return {}, {1: _i64(a["starts"]), 2: _i64(ends), 3: _i64(a["axes"]), 4: _i64(a["steps"])}


def _resize(op):
    """Scales where they give the result's shape (floor(size * scale)), else the sizes themselves."""
    a = op.attrs
    if len(op.inputs()) > 1:
        raise ValueError("run-time roi / scales")
    attrs = {k: a[k] for k in ("mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
                               "exclude_outside", "extrapolation_value")}
    consts = {1: _f32(a["roi"])} if a["roi"] else {}
    x, y = op.operands[0].type.shape, op.result.type.shape
    if all(math.floor(n * s) == m for n, s, m in zip(x, a["scales"], y)):
        consts[2] = _f32(a["scales"])
    else:
        consts[3] = _i64(y)
    return attrs, consts


def _cast(op):
    from onnx import helper

    from edgecc.ir.types import DTYPES
    return {"to": helper.np_dtype_to_tensor_dtype(DTYPES[op.attrs["to"]])}, {}


def _camel(kind: str) -> str:
    return "".join(w.capitalize() for w in kind.split("_"))


ONNX_OPS = {k: (_camel(k), _none) for k in """relu sigmoid tanh exp log sqrt reciprocal abs neg floor ceil round
    erf softplus softsign identity not add sub mul div pow max min sum mean where equal less greater and or
    less_or_equal greater_or_equal hard_swish global_average_pool global_max_pool""".split()}
ONNX_OPS.update({
    "prelu": ("PRelu", _none),
    "matmul": ("MatMul", _none),
    "leaky_relu": ("LeakyRelu", _pick("alpha")),
    "elu": ("Elu", _pick("alpha")),
    "selu": ("Selu", _pick("alpha", "gamma")),
    "hard_sigmoid": ("HardSigmoid", _pick("alpha", "beta")),
    "clip": ("Clip", _clip),
    "mod": ("Mod", _pick("fmod")),
    "conv": ("Conv", _pick("strides", "pads", "dilations", "group")),
    "conv_transpose": ("ConvTranspose", _pick("strides", "pads", "dilations", "group", "output_padding")),
    "gemm": ("Gemm", _pick("alpha", "beta", transA="trans_a", transB="trans_b")),
    "average_pool": ("AveragePool", _pool),
    "max_pool": ("MaxPool", _pool),
    "batch_normalization": ("BatchNormalization", _pick("epsilon")),
    "instance_normalization": ("InstanceNormalization", _pick("epsilon")),
    "layer_normalization": ("LayerNormalization", _pick("axis", "epsilon")),
    "lrn": ("LRN", _pick("alpha", "beta", "bias", "size")),
    "softmax": ("Softmax", _pick("axis")),
    "log_softmax": ("LogSoftmax", _pick("axis")),
    "reshape": ("Reshape", lambda op: ({}, {1: _i64(op.attrs["shape"])})),
    "transpose": ("Transpose", _pick("perm")),
    "concat": ("Concat", _pick("axis")),
    "split": ("Split", lambda op: ({"axis": op.attrs["axis"]}, {1: _i64(op.attrs["split"])})),
    "slice": ("Slice", _slice),
    "pad": ("Pad", lambda op: ({"mode": op.attrs["mode"]}, {1: _i64(op.attrs["pads"]), 2: _f32(op.attrs["value"])})),
    "gather": ("Gather", _pick("axis")),
    "tile": ("Tile", lambda op: ({}, {1: _i64(op.attrs["repeats"])})),
    "expand": ("Expand", lambda op: ({}, {1: _i64(op.result.type.shape)})),
    "depth_to_space": ("DepthToSpace", _pick("blocksize", "mode")),
    "space_to_depth": ("SpaceToDepth", _pick("blocksize")),
    "reduce_sum": ("ReduceSum", lambda op: ({"keepdims": op.attrs["keepdims"]}, {1: _i64(op.attrs["axes"])})),
    "argmax": ("ArgMax", _pick("axis", "keepdims", "select_last_index")),
    "argmin": ("ArgMin", _pick("axis", "keepdims", "select_last_index")),
    "cast": ("Cast", _cast),
    "resize": ("Resize", _resize),
})
ONNX_OPS.update({k: ("Reduce" + t, _pick("axes", "keepdims")) for k, t in (
    ("reduce_mean", "Mean"), ("reduce_max", "Max"), ("reduce_min", "Min"), ("reduce_prod", "Prod"),
    ("reduce_l2", "L2"), ("reduce_sum_square", "SumSquare"))})

# fused activations of conv / fully_connected (ir/ops.py ACT): a node after the op
ACTIVATIONS = {
    "relu": ("Relu", lambda p: ({}, {})),
    "relu6": ("Clip", lambda p: ({}, bounds(0.0, 6.0))),
    "leaky_relu": ("LeakyRelu", lambda p: ({"alpha": p[0]}, {})),
    "clip": ("Clip", lambda p: ({}, bounds(p[0], p[1]))),
}
