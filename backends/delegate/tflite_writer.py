"""Lowered edgecc IR -> a standalone int8 TFLite model (flatbuffer bytes).

What it writes: one TFLite subgraph whose inputs, outputs and tensors are the IR graph's values (same
names, shapes and dtypes; constants become buffers), with every op turned into the TFLite builtin(s)
that compute the same integers: int8 activations quantized per tensor, int8 weights per output channel
(quantized_dimension 0 for CONV_2D / FULLY_CONNECTED, 3 for DEPTHWISE_CONV_2D), int32 biases at
scale input_scale * weight_scale, and the operator versions TFLite's own converter gives int8 kernels.
The input is the IR after fold_constants, fold_batchnorm, fuse, layout and float_fallback: int8,
channels-last (data NHWC, conv weights OHWI), with fused `activation`s on conv / fully_connected.

Why: the Edge TPU compiler and Arm's Vela take int8 TFLite models, nothing else. An accelerator
partition of a graph (or a whole model) is handed to them in this form, and whatever they do not map
runs on their CPU fallback with TFLite's reference kernels, so every op written here must mean exactly
what the IR op means. An op that cannot be written that way is refused (`why_not_tflite` says why,
`tflite_model` raises NotExportable) rather than approximated.

The flatbuffer is built with the schema's generated builder functions from the `tflite` package.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import flatbuffers
import numpy as np
import tflite

from edgecc.ir.graph import fresh_name
from edgecc.ir.types import DTYPES

OP = tflite.BuiltinOperator
ACT = tflite.ActivationFunctionType
TENSOR_TYPES = {"i8": tflite.TensorType.INT8, "f32": tflite.TensorType.FLOAT32, "i32": tflite.TensorType.INT32}
# the activations TFLite fuses into an op, by their bounds in real numbers
FUSED_BOUNDS = {(-math.inf, math.inf): ACT.NONE, (0.0, math.inf): ACT.RELU, (0.0, 6.0): ACT.RELU6,
                (-1.0, 1.0): ACT.RELU_N1_TO_1}
CLAMP_OPS = {ACT.RELU: "RELU", ACT.RELU6: "RELU6", ACT.RELU_N1_TO_1: "RELU_N1_TO_1"}
DEPRECATED_CODE_LIMIT = 127  # builtin codes past this are written as PLACEHOLDER_FOR_GREATER_OP_CODES


class NotExportable(Exception):
    """an op this writer cannot express in TFLite; str(e) is the one-line reason"""


# ---- the public questions ---------------------------------------------------------------------
def why_not_tflite(op) -> Optional[str]:
    """None when the op can be written; else a short reason."""
    rule = RULES.get(op.kind)
    if rule is None:
        return f"{op.kind} is not written to TFLite (no rule for it)"
    return _types_reason(op, rule) or rule.check(op)


def tflite_op_name(op) -> Optional[str]:
    """The TFLite builtin the IR op becomes, None if it cannot be written."""
    if why_not_tflite(op) is not None:
        return None
    rule = RULES[op.kind]
    return rule.name(op) if callable(rule.name) else rule.name


def tflite_model(graph, description: str = "edgecc partition") -> bytes:
    """The graph as a TFLite flatbuffer; raises NotExportable naming the first op it cannot write."""
    flat = _Flat(graph)
    for op in graph.ops:
        reason = why_not_tflite(op)
        if reason is not None:
            raise NotExportable(f"{op.kind} '{op.name or op.results[0].name}': {reason}")
    for v in graph.inputs:
        flat.value(v)  # inputs first: the model's tensor order starts with them, as the converter's does
    for op in graph.ops:
        if op not in flat.absorbed:
            RULES[op.kind].emit(flat, op)
    return _serialize(flat, description)


# ---- rules ------------------------------------------------------------------------------------
@dataclass
class _Rule:
    name: object  # the builtin's name, or op -> name
    check: Callable  # op -> reason or None, after the operand types passed
    emit: Callable  # (flat, op) -> None: appends the TFLite operators
    weights: bool = False  # operands past the first are weights / bias (checked by `check`)


RULES: dict[str, _Rule] = {}


def _rule(*kinds, name, check=None, weights=False):
    def register(emit):
        for k in kinds:
            RULES[k] = _Rule(name, check or (lambda op: None), emit, weights)
        return emit
    return register


def _activation_reason(v, what) -> Optional[str]:
    t = v.type
    if t.dtype != "i8":
        return f"int8 only ({what} is {t.dtype})"
    if t.quant is None:
        return f"int8 only ({what} is not quantized)"
    if t.quant.per_axis:
        return f"{what} is quantized per axis; TFLite quantizes activations per tensor"
    return None


def _types_reason(op, rule) -> Optional[str]:
    if op.kind == "quantize":
        src = op.operands[0]
        first = None if src.type.dtype == "f32" and src.type.quant is None else _activation_reason(src, "the input")
        return first or _activation_reason(op.result, "the result")
    if op.kind == "dequantize":
        if op.result.type.dtype != "f32":
            return f"dequantize to {op.result.type.dtype}; TFLite dequantizes to float32"
        return _activation_reason(op.operands[0], "the input")
    data = op.operands[:1] if rule.weights else op.operands
    if any(v is None for v in data):
        return "a missing operand"
    for i, v in enumerate(data):
        reason = _activation_reason(v, f"operand {i}")
        if reason:
            return reason
    for r in op.results:
        reason = _activation_reason(r, "the result")
        if reason:
            return reason
    return None


def _same_quant(a, b) -> bool:
    return a.type.quant == b.type.quant


def _requires_same_quant(op) -> Optional[str]:
    """TFLite's int8 kernels of data movement and of max / min copy the integers: one quantization."""
    if any(not _same_quant(v, op.result) for v in op.operands if v is not None):
        return "operands and result quantized differently (the TFLite kernel copies the integers)"
    return None


def _fused_code(bounds) -> Optional[int]:
    return FUSED_BOUNDS.get((float(bounds[0]), float(bounds[1])))


def _act_bounds(op):
    """The fused activation of a conv / fully_connected as real-number bounds, None if not a clamp."""
    act, params = op.attrs.get("activation", "none"), op.attrs.get("act_params", [])
    return {"none": (-math.inf, math.inf), "relu": (0.0, math.inf), "relu6": (0.0, 6.0),
            "clip": tuple(params[:2]) if len(params) >= 2 else None}.get(act)


def _act_reason(op) -> Optional[str]:
    if _act_bounds(op) is None:
        return f"fused {op.attrs['activation']} (TFLite fuses only relu, relu6, relu_n1_to_1)"
    return None


def _clamp_bounds(op):
    """The real-number bounds of a standalone relu / clip."""
    return (0.0, math.inf) if op.kind == "relu" else (float(op.attrs["min"]), float(op.attrs["max"]))


# ---- the model being collected --------------------------------------------------------------------
@dataclass
class _Tensor:
    name: str
    shape: tuple
    dtype: str
    quant: Optional[tuple]  # (scales, zero points, quantized dimension)
    buffer: int


def _quant_of(t) -> Optional[tuple]:
    q = t.quant
    return None if q is None else (list(q.scale), list(q.zero_point), q.axis or 0)


class _Flat:
    """Tensors, buffers and operators of the TFLite subgraph, as plain data until _serialize."""

    def __init__(self, graph):
        self.graph = graph
        self.tensors: list[_Tensor] = []
        self.buffers = [b""]  # buffer 0: the empty one every non-constant tensor points at
        self.operators = []  # (builtin code, version, inputs, outputs, options or None)
        self.index = {}  # Value -> tensor index
        self.names: set = set()
        self.users = graph.users()
        self.absorbed: set = set()  # ops already written as part of an earlier one

    def tensor(self, name, shape, dtype, quant=None, data=None) -> int:
        buffer = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data, DTYPES[dtype]).tobytes())
            buffer = len(self.buffers) - 1
        self.tensors.append(_Tensor(fresh_name(name, self.names), tuple(int(d) for d in shape), dtype, quant, buffer))
        return len(self.tensors) - 1

    def value(self, v) -> int:
        """The tensor of an IR value (created on first use, named after it)."""
        if v not in self.index:
            self.index[v] = self.tensor(v.name, v.type.shape, v.type.dtype, _quant_of(v.type), v.data)
        return self.index[v]

    def like(self, v, suffix, shape=None) -> int:
        """A new activation tensor quantized as `v`, e.g. before a reshape or a clamp."""
        shape = v.type.shape if shape is None else shape
        return self.tensor(f"{v.name}/{suffix}", shape, v.type.dtype, _quant_of(v.type))

    def ints(self, name, values) -> int:
        """An int32 constant operand (shapes, axes, permutations, pads)."""
        data = np.asarray(values, np.int32)
        return self.tensor(name, data.shape, "i32", None, data)

    def op(self, name, inputs, outputs, options=None, version=1):
        self.operators.append((getattr(OP, name), version, list(inputs), list(outputs), options))

    def reshape(self, src: int, dst: int, name: str):
        self.op("RESHAPE", [src, self.ints(f"{name}/shape", self.tensors[dst].shape)], [dst])

    def only_user(self, v):
        users = self.users.get(v, [])
        return users[0] if len(users) == 1 and v not in self.graph.outputs else None


def _options(table: str, **fields):
    """A builtin options table (its name in the schema) with scalar fields."""
    return table, fields


# ---- shared pieces -------------------------------------------------------------------------------
def _clamp_after(flat, op, src: int, dst: int, bounds):
    """dst = src clamped to `bounds` (real numbers) on the integers: exact, because rounding is monotone
    (quantizing a clamped value is clamping the quantized value to the quantized bounds)."""
    t = op.result.type
    steps = [(kind, b) for kind, b in zip(("MAXIMUM", "MINIMUM"), bounds) if abs(b) != math.inf]
    at = src
    for i, (kind, b) in enumerate(steps):
        code = np.clip(np.rint(b / t.quant.scale[0]) + t.quant.zero_point[0], -128, 127)
        bound = flat.tensor(f"{op.result.name}/{kind.lower()}_bound", (), "i8", _quant_of(t), np.asarray(code, np.int8))
        out = dst if i == len(steps) - 1 else flat.like(op.result, "clamped_below")
        flat.op(kind, [at, bound], [out], version=2)
        at = out
    if not steps:  # clip(-inf, inf): a copy
        flat.reshape(src, dst, op.result.name)


def _result_with_activation(flat, op):
    """(fused activation code, tensor the op writes): a clamp TFLite cannot fuse follows the op on the
    integers, so the op then writes an intermediate of the result's quantization."""
    bounds = _act_bounds(op)
    code = _fused_code(bounds)
    y = flat.value(op.result)
    if code is not None:
        return code, y, None
    return ACT.NONE, flat.like(op.result, "unclamped"), bounds


def _finish_activation(flat, op, written: int, bounds):
    if bounds is not None:
        _clamp_after(flat, op, written, flat.value(op.result), bounds)


# ---- spatial geometry --------------------------------------------------------------------------------
@dataclass
class _Spatial:
    """A conv or pool as 2-D NHWC numbers (1-D ops get H = 1)."""
    x4: tuple
    y4: tuple
    kernel: list
    strides: list
    dilations: list
    begins: list
    ends: list  # end pads as given


def _spatial(op, kernel) -> _Spatial:
    x, y, a = op.operands[0].type.shape, op.result.type.shape, op.attrs
    nd = len(x) - 2
    lift = (lambda v, fill: [fill] * (2 - nd) + list(v))  # noqa: E731
    x4 = (x[0], *lift(x[1:-1], 1), x[-1])
    y4 = (y[0], *lift(y[1:-1], 1), y[-1])
    return _Spatial(x4, y4, lift(kernel, 1), lift(a["strides"], 1), lift(a.get("dilations", [1] * nd), 1),
                    lift(a["pads"][:nd], 0), lift(a["pads"][nd:], 0))


def _tflite_padding(s: _Spatial) -> Optional[int]:
    """SAME or VALID when the windows are TFLite's: same count and same first position on every axis
    (padding then contributes zeros or nothing, wherever it ends), else None."""
    valid = same = True
    for i in range(2):
        n, out, k, st, d = s.x4[1 + i], s.y4[1 + i], s.kernel[i], s.strides[i], s.dilations[i]
        span = (k - 1) * d + 1
        valid &= s.begins[i] == 0 and out == (n - span) // st + 1
        same &= out == -(-n // st) and s.begins[i] == max((out - 1) * st + span - n, 0) // 2
    return tflite.Padding.VALID if valid else tflite.Padding.SAME if same else None


def _window_ends(s: _Spatial) -> list:
    """The end padding the windows reach into (ceil_mode can read past the pads given)."""
    return [max(0, (s.y4[1 + i] - 1) * s.strides[i] + (s.kernel[i] - 1) * s.dilations[i] + 1
                - s.x4[1 + i] - s.begins[i]) for i in range(2)]


def _spatial_input(flat, op, s: _Spatial, pad_value: Optional[int]):
    """The 4-D input tensor and TFLite padding: the op's input (reshaped for 1-D ops) and SAME / VALID,
    or, when the pads are neither, an explicit PAD (with the zero point) / PADV2 (with `pad_value`)."""
    x = op.operands[0]
    src = flat.value(x)
    if len(s.x4) != x.type.rank:
        lifted = flat.like(x, "4d", s.x4)
        flat.reshape(src, lifted, x.name)
        src = lifted
    padding = _tflite_padding(s)
    if padding is not None:
        return src, padding
    ends = _window_ends(s)
    shape = (s.x4[0], s.x4[1] + s.begins[0] + ends[0], s.x4[2] + s.begins[1] + ends[1], s.x4[3])
    padded = flat.like(x, "padded", shape)
    pads = flat.ints(f"{x.name}/pads", [[0, 0], [s.begins[0], ends[0]], [s.begins[1], ends[1]], [0, 0]])
    if pad_value is None:
        flat.op("PAD", [src, pads], [padded], version=2)
    else:
        value = flat.tensor(f"{x.name}/pad_value", (), "i8", _quant_of(x.type), np.asarray(pad_value, np.int8))
        flat.op("PADV2", [src, pads, value], [padded], version=2)
    return padded, tflite.Padding.VALID


def _spatial_output(flat, op, s: _Spatial, target: int) -> int:
    """The tensor the 4-D op writes: `target` itself, or for a 1-D op a 4-D one (_close_spatial reshapes it)."""
    return target if len(s.y4) == op.result.type.rank else flat.like(op.result, "4d", s.y4)


def _close_spatial(flat, op, written: int, target: int):
    if written != target:
        flat.reshape(written, target, op.result.name)


def _spatial_reason(op) -> Optional[str]:
    if op.operands[0].type.rank not in (3, 4):
        return f"{op.operands[0].type.rank - 2}-D {op.kind} (TFLite has 2-D ones)"
    if not op.attrs.get("channels_last"):
        return "channels-first data (TFLite is NHWC: run the layout pass)"
    return None


# ---- conv / fully_connected ------------------------------------------------------------------------
def _depthwise(op) -> bool:
    channels = op.operands[0].type.shape[-1]
    return op.attrs["group"] == channels and op.attrs["group"] > 1


def _weights_reason(w, per_channel_count) -> Optional[str]:
    t = w.type
    if not w.is_const:
        return "weights computed at run time"
    if t.dtype != "i8" or t.quant is None:
        return f"int8 only (weights are {t.dtype}{'' if t.quant else ', not quantized'})"
    if any(z != 0 for z in t.quant.zero_point):
        return "int8 weights with a non-zero zero point (TFLite weights are symmetric)"
    if t.quant.per_axis and (t.quant.axis != 0 or len(t.quant.scale) != per_channel_count):
        return f"weights quantized along axis {t.quant.axis} (TFLite: per output channel)"
    return None


def _bias_reason(op) -> Optional[str]:
    b = op.operands[2] if len(op.operands) > 2 else None
    if b is None:
        return None
    if not b.is_const:
        return "a bias computed at run time"
    if b.type.dtype not in ("i32", "f32") or (b.type.dtype == "i32" and b.type.quant is None):
        return f"a {b.type.dtype} bias that is not a quantized int32 or float"
    return None


def _conv_check(op) -> Optional[str]:
    reason = _spatial_reason(op)
    if reason:
        return reason
    x, w = op.operands[0], op.operands[1]
    g, channels, m = op.attrs["group"], x.type.shape[-1], w.type.shape[0]
    if g != 1 and not _depthwise(op):
        return f"grouped conv ({g} groups of {channels} channels) that is not depthwise"
    return _weights_reason(w, m) or _bias_reason(op) or _act_reason(op)


def _weight_scales(w, n) -> np.ndarray:
    return np.broadcast_to(np.asarray(w.type.quant.scale, np.float32), (n,))


def _bias_tensor(flat, op, n: int, input_scale: float, weight_scales: np.ndarray) -> int:
    """The int32 bias TFLite adds to the accumulator: scale input_scale * weight_scale (float32, as TFLite
    multiplies them). A bias stored at (nearly) that scale keeps its integers; one at another scale, or a
    float one, is rounded to it once here: the same integers the C kernels add (backends/c/kernels/requant.py,
    bias_values). No bias is a zero one: Vela and the Edge TPU compiler expect all three inputs."""
    scale = (np.float32(input_scale) * weight_scales).astype(np.float32)
    b = op.operands[2] if len(op.operands) > 2 else None
    if b is None:
        data = np.zeros(n, np.int64)
    elif b.type.dtype == "f32":
        data = np.rint(np.asarray(b.data, np.float64).reshape(-1) / scale.astype(np.float64))
    else:
        have = np.broadcast_to(np.asarray(b.type.quant.scale, np.float64), (n,))
        data = np.asarray(b.data, np.int64).reshape(-1) - np.asarray(b.type.quant.zero_point, np.int64)
        if np.any(np.abs(have / scale.astype(np.float64) - 1) > 1e-4):
            data = np.rint(data * have / scale.astype(np.float64))
    data = np.broadcast_to(data, (n,)).astype(np.int64)
    if data.min(initial=0) < -2**31 or data.max(initial=0) >= 2**31:
        raise NotExportable(f"{op.kind} '{op.name}': bias overflows int32")
    per_tensor = len(set(scale.tolist())) == 1 and not op.operands[1].type.quant.per_axis
    quant = ([float(scale[0])], [0], 0) if per_tensor else ([float(s) for s in scale], [0] * n, 0)
    name = b.name if b is not None else f"{op.result.name}/bias"
    return flat.tensor(name, (n,), "i32", quant, data.astype(np.int32))


def _weights_tensor(flat, w, data, dim: int, n: int) -> int:
    q = w.type.quant
    quant = (list(q.scale), [0] * len(q.scale), dim) if q.per_axis else ([q.scale[0]], [0], 0)
    return flat.tensor(w.name, data.shape, "i8", quant, data)


@_rule("conv", name=lambda op: "DEPTHWISE_CONV_2D" if _depthwise(op) else "CONV_2D", check=_conv_check,
       weights=True)
def _conv(flat, op):
    x, w = op.operands[0], op.operands[1]
    m = w.type.shape[0]
    wdata = np.asarray(w.data, np.int8)
    if wdata.ndim == 3:  # OWI [M, K, C] -> [M, 1, K, C], a 1-D conv as a 2-D one of height 1
        wdata = wdata[:, None]
    s = _spatial(op, w.type.shape[1:-1])
    src, padding = _spatial_input(flat, op, s, None)
    code, written, bounds = _result_with_activation(flat, op)
    out = _spatial_output(flat, op, s, written)
    bias = _bias_tensor(flat, op, m, x.type.quant.scale[0], _weight_scales(w, m))
    geometry = dict(Padding=padding, StrideW=s.strides[1], StrideH=s.strides[0], FusedActivationFunction=code,
                    DilationWFactor=s.dilations[1], DilationHFactor=s.dilations[0])
    if _depthwise(op):
        # OHWI [C * mult, kh, kw, 1] -> [1, kh, kw, C * mult]: output channel c * mult + j, as in both formats
        weights = _weights_tensor(flat, w, np.ascontiguousarray(wdata.transpose(3, 1, 2, 0)), 3, m)
        options = _options("DepthwiseConv2DOptions", DepthMultiplier=m // x.type.shape[-1], **geometry)
        flat.op("DEPTHWISE_CONV_2D", [src, weights, bias], [out], options, version=3)
    else:
        weights = _weights_tensor(flat, w, np.ascontiguousarray(wdata), 0, m)
        flat.op("CONV_2D", [src, weights, bias], [out], _options("Conv2DOptions", **geometry), version=3)
    _close_spatial(flat, op, out, written)
    _finish_activation(flat, op, written, bounds)


def _fc_check(op) -> Optional[str]:
    w = op.operands[1]
    if w.type.rank != 2:
        return f"rank-{w.type.rank} weights"
    return _weights_reason(w, w.type.shape[0]) or _bias_reason(op) or _act_reason(op)


@_rule("fully_connected", name="FULLY_CONNECTED", check=_fc_check, weights=True)
def _fully_connected(flat, op):
    x, w = op.operands[0], op.operands[1]
    n = w.type.shape[0]
    code, written, bounds = _result_with_activation(flat, op)
    weights = _weights_tensor(flat, w, np.asarray(w.data, np.int8), 0, n)
    bias = _bias_tensor(flat, op, n, x.type.quant.scale[0], _weight_scales(w, n))
    keep = x.type.rank != 2  # [..., K] -> [..., N] as the IR has it, not flattened to [rows, N]
    options = _options("FullyConnectedOptions", FusedActivationFunction=code, KeepNumDims=keep)
    flat.op("FULLY_CONNECTED", [flat.value(x), weights, bias], [written], options, version=5 if keep else 4)
    _finish_activation(flat, op, written, bounds)


# ---- pools ----------------------------------------------------------------------------------------------
def _pool_check(op) -> Optional[str]:
    reason = _spatial_reason(op) or _requires_same_quant(op)
    if reason:
        return reason
    if len(op.results) != 1:
        return "max_pool indices"
    s = _spatial(op, op.attrs["kernel_shape"])
    if any(d != 1 for d in s.dilations):
        return f"dilation {max(s.dilations)} not supported (TFLite pools are undilated)"
    if op.kind == "average_pool" and _tflite_padding(s) is None:
        if not op.attrs["count_include_pad"]:
            return "average_pool padding that is neither SAME nor VALID and not counted"
        if any(need > given for need, given in zip(_window_ends(s), s.ends)):
            return "average_pool counting its pads with ceil_mode windows past them"
    return None


def _pool(code):
    def emit(flat, op):
        s = _spatial(op, op.attrs["kernel_shape"])
        src, padding = _spatial_input(flat, op, s, -128 if op.kind == "max_pool" else None)
        target = flat.value(op.result)
        out = _spatial_output(flat, op, s, target)
        options = _options("Pool2DOptions", Padding=padding, StrideW=s.strides[1], StrideH=s.strides[0],
                           FilterWidth=s.kernel[1], FilterHeight=s.kernel[0], FusedActivationFunction=ACT.NONE)
        flat.op(code, [src], [out], options, version=2)
        _close_spatial(flat, op, out, target)
    return emit


# TFLite's int8 average pool rounds the integer mean half away from zero, edgecc half to even: ties differ
# by one step (see the tests)
_rule("average_pool", name="AVERAGE_POOL_2D", check=_pool_check)(_pool("AVERAGE_POOL_2D"))
_rule("max_pool", name="MAX_POOL_2D", check=_pool_check)(_pool("MAX_POOL_2D"))


# ---- reductions ----------------------------------------------------------------------------------------------
def _reduce_axes(op):
    if op.kind.startswith("global_"):
        rank = op.operands[0].type.rank
        return (list(range(1, rank - 1)) if op.attrs.get("channels_last") else list(range(2, rank))), True
    return list(op.attrs["axes"]), bool(op.attrs["keepdims"])


def _reduce(code, version):
    def emit(flat, op):
        axes, keep = _reduce_axes(op)
        x = op.operands[0]
        flat.op(code, [flat.value(x), flat.ints(f"{op.result.name}/axes", axes)], [flat.value(op.result)],
                _options("ReducerOptions", KeepDims=keep), version=version)
    return emit


def _empty_axes(op) -> Optional[str]:
    return "a reduction over no axes" if not _reduce_axes(op)[0] else None


_rule("global_average_pool", "reduce_mean", name="MEAN", check=_empty_axes)(_reduce("MEAN", 2))
_rule("global_max_pool", "reduce_max", name="REDUCE_MAX",
      check=lambda op: _empty_axes(op) or _requires_same_quant(op))(_reduce("REDUCE_MAX", 2))
_rule("reduce_sum", name="SUM", check=_empty_axes)(_reduce("SUM", 2))


# ---- elementwise ---------------------------------------------------------------------------------------------
def _absorbed_clamp(flat, op):
    """A relu / clip that only follows `op`, with the same quantization in and out, and bounds TFLite
    fuses: it becomes op's fused activation (exact, as a clamp on the integers), as the converter writes
    ADD + RELU."""
    user = flat.only_user(op.result)
    if user is None or user.kind not in ("relu", "clip") or not _same_quant(user.operands[0], user.result):
        return None
    code = _fused_code(_clamp_bounds(user))
    return (user, code) if code not in (None, ACT.NONE) else None


def _binary(code, options_table):
    def emit(flat, op):
        act, result = ACT.NONE, op.result
        found = _absorbed_clamp(flat, op)
        if found is not None:
            user, act = found
            flat.absorbed.add(user)
            result = user.result
        a, b = (flat.value(v) for v in op.operands)
        flat.op(code, [a, b], [flat.value(result)], _options(options_table, FusedActivationFunction=act),
                version=2)
    return emit


def _binary_check(op) -> Optional[str]:
    if max(v.type.rank for v in op.operands) > 4 and op.operands[0].type.shape != op.operands[1].type.shape:
        return "broadcasting over more than 4 dimensions"
    return None


_rule("add", name="ADD", check=_binary_check)(_binary("ADD", "AddOptions"))
_rule("sub", name="SUB", check=_binary_check)(_binary("SUB", "SubOptions"))
_rule("mul", name="MUL", check=_binary_check)(_binary("MUL", "MulOptions"))


def _max_min_check(op) -> Optional[str]:
    if len(op.operands) != 2:
        return f"{op.kind} of {len(op.operands)} operands (TFLite's takes two)"
    return _binary_check(op) or _requires_same_quant(op)


@_rule("max", "min", name=lambda op: "MAXIMUM" if op.kind == "max" else "MINIMUM", check=_max_min_check)
def _max_min(flat, op):
    code = "MAXIMUM" if op.kind == "max" else "MINIMUM"
    flat.op(code, [flat.value(v) for v in op.operands], [flat.value(op.result)], version=2)


def _clamp_name(op) -> str:
    lo, hi = _clamp_bounds(op)
    code = _fused_code((lo, hi))
    if code in CLAMP_OPS:
        return CLAMP_OPS[code]
    return "/".join(k for k, b in (("MAXIMUM", lo), ("MINIMUM", hi)) if abs(b) != math.inf) or "RESHAPE"


def _clamp_check(op) -> Optional[str]:
    if _clamp_name(op) in CLAMP_OPS.values():
        return None  # TFLite's RELU kernels requantize
    return _requires_same_quant(op)


@_rule("relu", "clip", name=_clamp_name, check=_clamp_check)
def _clamp(flat, op):
    name = _clamp_name(op)
    x, y = flat.value(op.operands[0]), flat.value(op.result)
    if name in CLAMP_OPS.values():
        flat.op(name, [x], [y], version=1 if name == "RELU_N1_TO_1" else 2)
    else:
        _clamp_after(flat, op, x, y, _clamp_bounds(op))


def _fixed_output(scale, zero_point, what):
    """TFLite's int8 LOGISTIC / TANH / SOFTMAX kernels write one output quantization only."""
    def check(op):
        q = op.result.type.quant
        if not (math.isclose(q.scale[0], scale, rel_tol=1e-6) and q.zero_point[0] == zero_point):
            return f"{what} result quantized ({q.scale[0]:g}, {q.zero_point[0]}); TFLite's int8 kernel " \
                   f"writes ({scale:g}, {zero_point})"
        return None
    return check


def _unary(code, version=1, options=None):
    def emit(flat, op):
        flat.op(code, [flat.value(op.operands[0])], [flat.value(op.result)],
                options(op) if options else None, version=version)
    return emit


_rule("sigmoid", name="LOGISTIC", check=_fixed_output(1 / 256, -128, "sigmoid"))(_unary("LOGISTIC", 2))
_rule("tanh", name="TANH", check=_fixed_output(1 / 128, 0, "tanh"))(_unary("TANH", 2))
_rule("hard_swish", name="HARD_SWISH")(_unary("HARD_SWISH"))
_rule("leaky_relu", name="LEAKY_RELU")(
    _unary("LEAKY_RELU", options=lambda op: _options("LeakyReluOptions", Alpha=float(op.attrs["alpha"]))))


def _softmax_check(op) -> Optional[str]:
    if op.attrs["axis"] != op.operands[0].type.rank - 1:
        return f"softmax along axis {op.attrs['axis']} of {op.operands[0].type.rank} (TFLite: the last)"
    return _fixed_output(1 / 256, -128, "softmax")(op)


_rule("softmax", name="SOFTMAX", check=_softmax_check)(
    _unary("SOFTMAX", 2, options=lambda op: _options("SoftmaxOptions", Beta=1.0)))


_rule("quantize", name="QUANTIZE")(_unary("QUANTIZE"))
_rule("dequantize", name="DEQUANTIZE")(_unary("DEQUANTIZE", 2))


# ---- data movement ------------------------------------------------------------------------------------------
@_rule("reshape", "identity", name="RESHAPE", check=_requires_same_quant)
def _reshape(flat, op):
    flat.reshape(flat.value(op.operands[0]), flat.value(op.result), op.result.name)


@_rule("transpose", name="TRANSPOSE",
       check=lambda op: _requires_same_quant(op) or ("rank above 6" if len(op.attrs["perm"]) > 6 else None))
def _transpose(flat, op):
    perm = flat.ints(f"{op.result.name}/perm", op.attrs["perm"])
    flat.op("TRANSPOSE", [flat.value(op.operands[0]), perm], [flat.value(op.result)],
            version=4 if len(op.attrs["perm"]) > 4 else 2)


def _requantized(flat, v, like) -> int:
    """v's tensor, or v requantized to `like`'s quantization by a QUANTIZE (int8 -> int8: one rounding,
    of the same real number edgecc rounds)."""
    if _same_quant(v, like):
        return flat.value(v)
    t = flat.tensor(f"{v.name}/requantized", v.type.shape, "i8", _quant_of(like.type))
    flat.op("QUANTIZE", [flat.value(v)], [t])
    return t


@_rule("concat", name="CONCATENATION")
def _concat(flat, op):
    # TFLite's reference kernel (and Vela, the Edge TPU compiler) concatenate one quantization
    inputs = [_requantized(flat, v, op.result) for v in op.operands]
    flat.op("CONCATENATION", inputs, [flat.value(op.result)],
            _options("ConcatenationOptions", Axis=op.attrs["axis"], FusedActivationFunction=ACT.NONE), version=2)


def _pad_name(op) -> str:
    if op.attrs["mode"] == "reflect":
        return "MIRROR_PAD"
    return "PAD" if _pad_code(op) == op.operands[0].type.quant.zero_point[0] else "PADV2"


def _pad_code(op) -> int:
    q = op.result.type.quant
    return int(np.clip(np.rint(op.attrs["value"] / q.scale[0]) + q.zero_point[0], -128, 127))


def _pad_check(op) -> Optional[str]:
    if op.attrs["mode"] not in ("constant", "reflect"):
        return f"{op.attrs['mode']} padding (TFLite pads with a constant or by reflection)"
    if any(p < 0 for p in op.attrs["pads"]):
        return "negative pads (cropping)"
    return _requires_same_quant(op)


@_rule("pad", name=_pad_name, check=_pad_check)
def _pad(flat, op):
    x, p = op.operands[0], op.attrs["pads"]
    r = x.type.rank
    name = _pad_name(op)
    inputs = [flat.value(x), flat.ints(f"{op.result.name}/pads", [[p[i], p[r + i]] for i in range(r)])]
    options = None
    if name == "PADV2":
        inputs.append(flat.tensor(f"{op.result.name}/value", (), "i8", _quant_of(x.type),
                                  np.asarray(_pad_code(op), np.int8)))
    if name == "MIRROR_PAD":
        options = _options("MirrorPadOptions", Mode=tflite.MirrorPadMode.REFLECT)
    flat.op(name, inputs, [flat.value(op.result)], options, version=1 if name == "MIRROR_PAD" else 2)


@_rule("slice", name="STRIDED_SLICE", check=_requires_same_quant)
def _slice(flat, op):
    shape, a = op.operands[0].type.shape, op.attrs
    begin, end, strides = [0] * len(shape), list(shape), [1] * len(shape)
    end_mask = 0
    for st, en, ax, step in zip(a["starts"], a["ends"], a["axes"], a["steps"]):
        begin[ax], end[ax], strides[ax] = st, en, step
        if step < 0 and en < 0:  # the IR's -1 means "through index 0"; TFLite's -1 is the last element
            end_mask |= 1 << ax
    name = op.result.name
    inputs = [flat.value(op.operands[0]), flat.ints(f"{name}/begin", begin), flat.ints(f"{name}/end", end),
              flat.ints(f"{name}/strides", strides)]
    flat.op("STRIDED_SLICE", inputs, [flat.value(op.result)], _options("StridedSliceOptions", EndMask=end_mask),
            version=4 if len(shape) > 4 else 2)


# (mode, coordinate_transformation_mode, nearest_mode) -> (align_corners, half_pixel_centers), the pairs
# whose sampling positions TFLite's kernels compute (TFLite rounds align_corners nearest half up)
RESIZE_FORMS = {
    ("nearest", "asymmetric", "floor"): (False, False),
    ("nearest", "align_corners", "round_prefer_ceil"): (True, False),
    ("nearest", "half_pixel", "round_prefer_ceil"): (False, True),
    ("nearest", "tf_half_pixel_for_nn", "floor"): (False, True),
    ("linear", "asymmetric", None): (False, False),
    ("linear", "align_corners", None): (True, False),
    ("linear", "half_pixel", None): (False, True),
}


def _resize_form(op):
    a = op.attrs
    return RESIZE_FORMS.get((a["mode"], a["coordinate_transformation_mode"],
                             a["nearest_mode"] if a["mode"] == "nearest" else None))


def _resize_check(op) -> Optional[str]:
    x, y, a = op.operands[0].type, op.result.type, op.attrs
    if any(v is not None for v in op.operands[1:]):
        return "run-time resize scales or roi"
    if x.rank != 4 or x.shape[0] != y.shape[0] or x.shape[3] != y.shape[3]:
        return "resize of axes other than H and W of NHWC data"
    if any(abs(float(a["scales"][i]) * x.shape[i] - y.shape[i]) > 1e-6 for i in (1, 2)):
        return "resize scales that are not output / input sizes (TFLite takes sizes)"
    if _resize_form(op) is None:
        return f"{a['mode']} resize with {a['coordinate_transformation_mode']} coordinates" + \
            (f" and {a['nearest_mode']} rounding" if a["mode"] == "nearest" else "") + " (no TFLite form)"
    return _requires_same_quant(op)


@_rule("resize", name=lambda op: "RESIZE_BILINEAR" if op.attrs["mode"] == "linear" else "RESIZE_NEAREST_NEIGHBOR",
       check=_resize_check)
def _resize(flat, op):
    align, half = _resize_form(op)
    bilinear = op.attrs["mode"] == "linear"
    code = "RESIZE_BILINEAR" if bilinear else "RESIZE_NEAREST_NEIGHBOR"
    size = flat.ints(f"{op.result.name}/size", op.result.type.shape[1:3])
    version = 3 if half or (align and not bilinear) else 2
    options = _options("ResizeBilinearOptions" if bilinear else "ResizeNearestNeighborOptions",
                       AlignCorners=align, HalfPixelCenters=half)
    flat.op(code, [flat.value(op.operands[0]), size], [flat.value(op.result)], options, version=version)


# ---- the flatbuffer ------------------------------------------------------------------------------------------
def _vector(b, start, offsets):
    start(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _numbers(b, values, dtype):
    return b.CreateNumpyVector(np.asarray(values, dtype).reshape(-1))


def _buffer(b, data: bytes):
    if not data:
        tflite.BufferStart(b)
        return tflite.BufferEnd(b)
    b.Prep(16, len(data))  # 16-byte aligned data, as the converter writes it (SIMD loads in place)
    vec = b.CreateNumpyVector(np.frombuffer(data, np.uint8))
    tflite.BufferStart(b)
    tflite.BufferAddData(b, vec)
    return tflite.BufferEnd(b)


def _tensor(b, t: _Tensor):
    name = b.CreateString(t.name)
    shape = _numbers(b, t.shape, np.int32)
    quant = None
    if t.quant is not None:
        scales, zeros, dim = t.quant
        s, z = _numbers(b, scales, np.float32), _numbers(b, zeros, np.int64)
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, s)
        tflite.QuantizationParametersAddZeroPoint(b, z)
        tflite.QuantizationParametersAddQuantizedDimension(b, dim)
        quant = tflite.QuantizationParametersEnd(b)
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape)
    tflite.TensorAddType(b, TENSOR_TYPES[t.dtype])
    tflite.TensorAddBuffer(b, t.buffer)
    tflite.TensorAddName(b, name)
    if quant is not None:
        tflite.TensorAddQuantization(b, quant)
    return tflite.TensorEnd(b)


def _options_table(b, options):
    table, fields = options
    getattr(tflite, f"{table}Start")(b)
    for field, value in fields.items():
        getattr(tflite, f"{table}Add{field}")(b, value)
    return getattr(tflite.BuiltinOptions, table), getattr(tflite, f"{table}End")(b)


def _operator(b, opcode_index, inputs, outputs, options):
    ins, outs = _numbers(b, inputs, np.int32), _numbers(b, outputs, np.int32)
    table = _options_table(b, options) if options is not None else None
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, opcode_index)
    tflite.OperatorAddInputs(b, ins)
    tflite.OperatorAddOutputs(b, outs)
    if table is not None:
        tflite.OperatorAddBuiltinOptionsType(b, table[0])
        tflite.OperatorAddBuiltinOptions(b, table[1])
    return tflite.OperatorEnd(b)


def _opcodes(flat):
    """Builtin code -> (index, version): one entry per builtin, at the highest version its uses need."""
    codes: dict = {}
    for code, version, *_ in flat.operators:
        index, v = codes.get(code, (len(codes), 0))
        codes[code] = (index, max(v, version))
    return codes


def _operator_code(b, code, version):
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, DEPRECATED_CODE_LIMIT))
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddVersion(b, version)
    return tflite.OperatorCodeEnd(b)


def _serialize(flat, description) -> bytes:
    b = flatbuffers.Builder(1024 + sum(len(d) for d in flat.buffers))
    buffers = [_buffer(b, d) for d in flat.buffers]
    tensors = [_tensor(b, t) for t in flat.tensors]
    codes = _opcodes(flat)
    operators = [_operator(b, codes[code][0], ins, outs, options) for code, _, ins, outs, options in flat.operators]
    inputs = _numbers(b, [flat.value(v) for v in flat.graph.inputs], np.int32)
    outputs = _numbers(b, [flat.value(v) for v in flat.graph.outputs], np.int32)
    tensor_vec = _vector(b, tflite.SubGraphStartTensorsVector, tensors)
    operator_vec = _vector(b, tflite.SubGraphStartOperatorsVector, operators)
    name = b.CreateString(flat.graph.name)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensor_vec)
    tflite.SubGraphAddInputs(b, inputs)
    tflite.SubGraphAddOutputs(b, outputs)
    tflite.SubGraphAddOperators(b, operator_vec)
    tflite.SubGraphAddName(b, name)
    subgraph = tflite.SubGraphEnd(b)
    ordered = sorted(codes.items(), key=lambda kv: kv[1][0])
    code_vec = _vector(b, tflite.ModelStartOperatorCodesVector,
                       [_operator_code(b, code, version) for code, (_, version) in ordered])
    subgraph_vec = _vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
    buffer_vec = _vector(b, tflite.ModelStartBuffersVector, buffers)
    desc = b.CreateString(description)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)  # the schema version every TFLite reader takes
    tflite.ModelAddOperatorCodes(b, code_vec)
    tflite.ModelAddSubgraphs(b, subgraph_vec)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, buffer_vec)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())
