"""The op set: every op kind declared once, with its operands, attributes and verifier.

Ops mirror ONNX semantics with every attribute made explicit by the frontend (defaults
filled, auto_pad resolved to pads, shape-like inputs such as Reshape's shape, Slice's starts or
Pad's pads turned into attributes). Quantization lives on types, not on ops: an op whose operand
or result type carries `quant` means "dequantize the operands, compute in real numbers, quantize
the result" (the QDQ reading of ONNX), which integer kernels implement exactly or within one step.

`OPS[kind]` is an OpDef; `infer_shapes(op)` gives the result shapes an op must have (used by the
verifier and by passes that build new ops).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

INT, FLOAT, STR, INTS, FLOATS, STRS = "int", "float", "str", "ints", "floats", "strs"
REQUIRED = object()


@dataclass
class OpDef:
    kind: str
    operands: tuple[int, int]  # (min, max) count; max -1 = variadic
    results: tuple[int, int] = (1, 1)
    attrs: dict = field(default_factory=dict)  # name -> (kind, default or REQUIRED)
    infer: Optional[Callable] = None  # op -> list of result shapes
    doc: str = ""


OPS: dict[str, OpDef] = {}


def _def(kind, operands, attrs=None, results=(1, 1), infer=None, doc=""):
    OPS[kind] = OpDef(kind, operands, results, attrs or {}, infer, doc)


# ---- shape helpers ---------------------------------------------------------------------------
def broadcast_shapes(*shapes):
    return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def _same(op):
    return [op.operands[0].type.shape]


def _bcast(op):
    return [broadcast_shapes(*[v.type.shape for v in op.inputs()])]


def _where(op):
    return [broadcast_shapes(*[v.type.shape for v in op.operands])]


def conv_out(size, k, stride, dilation, pad_begin, pad_end, ceil=False):
    span = dilation * (k - 1) + 1
    num = size + pad_begin + pad_end - span
    out = (-(-num // stride) if ceil else num // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_begin:  # last window must start inside input
        out -= 1
    return out


def to_channels_first(shape) -> tuple:
    """[N, *spatial, C] -> [N, C, *spatial]"""
    return (shape[0], shape[-1], *shape[1:-1])


def to_channels_last(shape) -> tuple:
    """[N, C, *spatial] -> [N, *spatial, C]"""
    return (shape[0], *shape[2:], shape[1])


def _channels_last_aware(infer):
    """Run a channels-first shape rule on an op that may have channels_last = 1 (NHWC data, OHWI weights)."""
    def rule(op):
        if not op.attrs.get("channels_last"):
            return infer(op)
        x = to_channels_first(op.operands[0].type.shape)
        w = to_channels_first(op.operands[1].type.shape) if op.kind == "conv" else None
        return [to_channels_last(s) for s in infer(op, x, w)]
    return rule


def _conv_cf(op, x=None, w=None):
    x = x or op.operands[0].type.shape
    w = w or op.operands[1].type.shape
    a, nd = op.attrs, len(x) - 2
    sp = [conv_out(x[2 + i], w[2 + i], a["strides"][i], a["dilations"][i], a["pads"][i], a["pads"][nd + i])
          for i in range(nd)]
    return [(x[0], w[0], *sp)]


_conv = _channels_last_aware(_conv_cf)


def _conv_transpose(op):
    x, w = op.operands[0].type.shape, op.operands[1].type.shape
    a, nd = op.attrs, len(x) - 2
    sp = [a["strides"][i] * (x[2 + i] - 1) + a["output_padding"][i] + ((w[2 + i] - 1) * a["dilations"][i] + 1)
          - a["pads"][i] - a["pads"][nd + i] for i in range(nd)]
    return [(x[0], w[1] * a["group"], *sp)]


def _pool_cf(op, x=None, w=None):
    x, a = x or op.operands[0].type.shape, op.attrs
    nd = len(x) - 2
    sp = [conv_out(x[2 + i], a["kernel_shape"][i], a["strides"][i], a.get("dilations", [1] * nd)[i],
                   a["pads"][i], a["pads"][nd + i], bool(a["ceil_mode"])) for i in range(nd)]
    shape = (x[0], x[1], *sp)
    return [shape] * len(op.results)


def _global_pool_cf(op, x=None, w=None):
    x = x or op.operands[0].type.shape
    return [(x[0], x[1]) + (1,) * (len(x) - 2)]


_pool = _channels_last_aware(_pool_cf)
_global_pool = _channels_last_aware(_global_pool_cf)


def _matmul(op):
    a, b = op.operands[0].type.shape, op.operands[1].type.shape
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return [out]


def _gemm(op):
    a, b = op.operands[0].type.shape, op.operands[1].type.shape
    m = a[1] if op.attrs["trans_a"] else a[0]
    n = b[0] if op.attrs["trans_b"] else b[1]
    return [(m, n)]


def _fully_connected(op):
    x, w = op.operands[0].type.shape, op.operands[1].type.shape
    return [tuple(x[:-1]) + (w[0],)]


def _reshape(op):
    return [tuple(op.attrs["shape"])]


def _transpose(op):
    x = op.operands[0].type.shape
    return [tuple(x[p] for p in op.attrs["perm"])]


def _concat(op):
    shapes = [v.type.shape for v in op.operands]
    ax = op.attrs["axis"]
    out = list(shapes[0])
    out[ax] = sum(s[ax] for s in shapes)
    return [tuple(out)]


def _split(op):
    x, ax = op.operands[0].type.shape, op.attrs["axis"]
    return [tuple(x[:ax]) + (n,) + tuple(x[ax + 1:]) for n in op.attrs["split"]]


def _slice(op):
    out = list(op.operands[0].type.shape)
    for st, en, ax, step in zip(op.attrs["starts"], op.attrs["ends"], op.attrs["axes"], op.attrs["steps"]):
        out[ax] = len(range(st, en, step))
    return [tuple(out)]


def _pad(op):
    x, p = op.operands[0].type.shape, op.attrs["pads"]
    r = len(x)
    return [tuple(x[i] + p[i] + p[r + i] for i in range(r))]


def _tile(op):
    return [tuple(d * r for d, r in zip(op.operands[0].type.shape, op.attrs["repeats"]))]


def _reduce(op):
    x, axes, keep = op.operands[0].type.shape, op.attrs["axes"], op.attrs["keepdims"]
    out = []
    for i, d in enumerate(x):
        if i in axes:
            if keep:
                out.append(1)
        else:
            out.append(d)
    return [tuple(out)]


def _arg(op):
    x, ax = op.operands[0].type.shape, op.attrs["axis"]
    out = list(x)
    if op.attrs["keepdims"]:
        out[ax] = 1
    else:
        del out[ax]
    return [tuple(out)]


def _resize(op):
    """Checks only (None: the result type holds the output shape): one scale per axis, and run-time
    roi / scales operands sized by `axes`."""
    x, a = op.operands[0].type, op.attrs
    if len(a["scales"]) != x.rank:
        raise ValueError(f"{len(a['scales'])} scales for rank {x.rank}")
    if a["roi"] and len(a["roi"]) != 2 * x.rank:
        raise ValueError(f"roi of {len(a['roi'])} values for rank {x.rank} (begins then ends of every axis)")
    if op.result.type.rank != x.rank:
        raise ValueError(f"result rank {op.result.type.rank} differs from the input's {x.rank}")
    axes = a.get("axes", [])
    if any(not 0 <= k < x.rank for k in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes} are not distinct axes of rank {x.rank}")
    operands = list(op.operands[1:]) + [None] * (3 - len(op.operands))
    for v, per_axis, what in zip(operands, (2, 1), ("roi", "scales")):
        if v is not None and (v.type.dtype != "f32" or v.type.shape != (per_axis * len(axes),)):
            raise ValueError(f"run-time {what} %{v.name} must be f32[{per_axis * len(axes)}] for axes {axes}")
    return None


def resize_geometry(attrs: dict, rank: int, roi=None, scales=None) -> tuple[list, list]:
    """A resize's per-axis scales and roi [begins..., ends...] (roi full even when the attribute is
    empty): the attributes, with the entries of `axes` replaced by the run-time roi / scales values
    where given (arrays as the operands hold them, None where absent)."""
    full_scales = [float(s) for s in attrs["scales"]]
    full_roi = [float(r) for r in attrs["roi"]] or [0.0] * rank + [1.0] * rank
    axes = attrs.get("axes", [])
    for j, ax in enumerate(axes):
        if scales is not None:
            full_scales[ax] = float(scales[j])
        if roi is not None:
            full_roi[ax], full_roi[rank + ax] = float(roi[j]), float(roi[len(axes) + j])
    return full_scales, full_roi


def _gather(op):
    x, idx, ax = op.operands[0].type.shape, op.operands[1].type.shape, op.attrs["axis"]
    return [tuple(x[:ax]) + tuple(idx) + tuple(x[ax + 1:])]


def _depth_to_space(op):
    n, c, h, w = op.operands[0].type.shape
    b = op.attrs["blocksize"]
    return [(n, c // (b * b), h * b, w * b)]


def _space_to_depth(op):
    n, c, h, w = op.operands[0].type.shape
    b = op.attrs["blocksize"]
    return [(n, c * b * b, h // b, w // b)]


def _layer_norm(op):
    x, ax = op.operands[0].type.shape, op.attrs["axis"]
    stat = tuple(x[:ax]) + (1,) * (len(x) - ax)
    return [tuple(x), stat, stat][: len(op.results)]


def _rnn(op):
    x, a = op.operands[0].type.shape, op.attrs
    dirs = 2 if a["direction"] == "bidirectional" else 1
    hid = a["hidden_size"]
    if a["layout"] == 0:
        seq, batch = x[0], x[1]
        y, yh = (seq, dirs, batch, hid), (dirs, batch, hid)
    else:
        batch, seq = x[0], x[1]
        y, yh = (batch, seq, dirs, hid), (batch, dirs, hid)
    return [y, yh, yh][: len(op.results)]


# ---- the op set ------------------------------------------------------------------------------
ACT = {"activation": (STR, "none"), "act_params": (FLOATS, [])}  # fused activation of conv/fc
# channels_last = 1: data [N, *spatial, C] and conv weights [M, *k, C/group] (NHWC / OHWI), chosen by
# the layout pass; attributes (strides, pads, kernel_shape) still list spatial axes in order.
LAYOUT = {"channels_last": (INT, 0)}
UNARY = """relu sigmoid tanh exp log sqrt reciprocal abs neg floor ceil round erf softplus softsign
mish hard_swish identity not""".split()
for k in UNARY:
    _def(k, (1, 1), infer=_same)
_def("leaky_relu", (1, 1), {"alpha": (FLOAT, 0.01)}, infer=_same)
_def("elu", (1, 1), {"alpha": (FLOAT, 1.0)}, infer=_same)
_def("selu", (1, 1), {"alpha": (FLOAT, 1.67326319217681884765625), "gamma": (FLOAT, 1.05070102214813232421875)},
     infer=_same)
_def("hard_sigmoid", (1, 1), {"alpha": (FLOAT, 0.2), "beta": (FLOAT, 0.5)}, infer=_same)
_def("gelu", (1, 1), {"approximate": (STR, "none")}, infer=_same)
_def("clip", (1, 1), {"min": (FLOAT, float("-inf")), "max": (FLOAT, float("inf"))}, infer=_same,
     doc="bounds in real numbers; integer tensors clip to the rounded bounds")
_def("cast", (1, 1), {"to": (STR, REQUIRED)}, infer=_same, doc="`to` is a dtype short name")
_def("quantize", (1, 1), infer=_same, doc="float -> integer type; parameters are the result type's quant")
_def("dequantize", (1, 1), infer=_same, doc="quantized integer -> float; parameters are the operand's quant")
_def("prelu", (2, 2), infer=_bcast)
BINARY = "add sub mul div pow mod and or equal less greater less_or_equal greater_or_equal".split()
for k in BINARY:
    _def(k, (2, 2), {"fmod": (INT, 0)} if k == "mod" else None, infer=_bcast)
for k in ("max", "min", "sum", "mean"):
    _def(k, (1, -1), infer=_bcast)
_def("where", (3, 3), infer=_where)

_def("conv", (2, 3), {"strides": (INTS, REQUIRED), "pads": (INTS, REQUIRED), "dilations": (INTS, REQUIRED),
                      "group": (INT, 1), **ACT, **LAYOUT}, infer=_conv,
     doc="x [N,C,*spatial] (NCHW order unless the type's layout says otherwise), w [M,C/group,*k], bias [M]; "
         "pads = begins then ends")
_def("conv_transpose", (2, 3), {"strides": (INTS, REQUIRED), "pads": (INTS, REQUIRED),
                                "dilations": (INTS, REQUIRED), "group": (INT, 1),
                                "output_padding": (INTS, REQUIRED)}, infer=_conv_transpose)
_def("matmul", (2, 2), infer=_matmul)
_def("gemm", (2, 3), {"alpha": (FLOAT, 1.0), "beta": (FLOAT, 1.0), "trans_a": (INT, 0), "trans_b": (INT, 0)},
     infer=_gemm)
_def("fully_connected", (2, 3), dict(ACT), infer=_fully_connected,
     doc="y[..., n] = sum_k x[..., k] * w[n, k] + bias[n], then the fused activation")
POOL = {"kernel_shape": (INTS, REQUIRED), "strides": (INTS, REQUIRED), "pads": (INTS, REQUIRED),
        "ceil_mode": (INT, 0)}
_def("average_pool", (1, 1), {**POOL, **LAYOUT, "count_include_pad": (INT, 0)}, infer=_pool)
_def("max_pool", (1, 1), {**POOL, **LAYOUT, "dilations": (INTS, REQUIRED), "storage_order": (INT, 0)},
     results=(1, 2),
     infer=_pool, doc="second result (optional): int64 flat indices")
_def("global_average_pool", (1, 1), dict(LAYOUT), infer=_global_pool)
_def("global_max_pool", (1, 1), dict(LAYOUT), infer=_global_pool)
_def("batch_normalization", (5, 5), {"epsilon": (FLOAT, 1e-5)}, infer=_same,
     doc="inference form: x, scale, bias, mean, var; channel axis 1")
_def("instance_normalization", (3, 3), {"epsilon": (FLOAT, 1e-5)}, infer=_same)
_def("layer_normalization", (2, 3), {"axis": (INT, -1), "epsilon": (FLOAT, 1e-5)}, results=(1, 3),
     infer=_layer_norm, doc="axis is non-negative after import; results: y, mean, inv_std_dev")
_def("lrn", (1, 1), {"alpha": (FLOAT, 1e-4), "beta": (FLOAT, 0.75), "bias": (FLOAT, 1.0), "size": (INT, REQUIRED)},
     infer=_same)
_def("softmax", (1, 1), {"axis": (INT, REQUIRED)}, infer=_same, doc="opset-13 meaning: along one axis")
_def("log_softmax", (1, 1), {"axis": (INT, REQUIRED)}, infer=_same)

_def("reshape", (1, 1), {"shape": (INTS, REQUIRED)}, infer=_reshape, doc="the full static result shape")
_def("transpose", (1, 1), {"perm": (INTS, REQUIRED)}, infer=_transpose)
_def("concat", (1, -1), {"axis": (INT, REQUIRED)}, infer=_concat)
_def("split", (1, 1), {"axis": (INT, REQUIRED), "split": (INTS, REQUIRED)}, results=(1, -1), infer=_split)
_def("slice", (1, 1), {"starts": (INTS, REQUIRED), "ends": (INTS, REQUIRED), "axes": (INTS, REQUIRED),
                       "steps": (INTS, REQUIRED)}, infer=_slice,
     doc="normalized: non-negative axes, starts clamped in range, ends clamped (may be -1 for negative steps)")
_def("pad", (1, 1), {"pads": (INTS, REQUIRED), "mode": (STR, "constant"), "value": (FLOAT, 0.0)}, infer=_pad,
     doc="pads = begins then ends for every axis (may be negative: crop)")
_def("resize", (1, 3), {"mode": (STR, "nearest"), "coordinate_transformation_mode": (STR, "half_pixel"),
                        "nearest_mode": (STR, "round_prefer_floor"), "cubic_coeff_a": (FLOAT, -0.75),
                        "exclude_outside": (INT, 0), "extrapolation_value": (FLOAT, 0.0),
                        "scales": (FLOATS, REQUIRED), "roi": (FLOATS, []), "axes": (INTS, [])},
     infer=_resize,
     doc="operands x, roi (None when absent), scales (None when absent); the result type holds the output "
         "shape. Attributes scales (one per axis; from sizes when given) and roi (begins then ends, "
         "tf_crop_and_resize only) are the compile-time form, the common one. Run-time roi [2 * len(axes)] "
         "and scales [len(axes)] operands (float32), when present, replace the entries of the axes listed "
         "in `axes` (in the operands' order) at run time; run-time scales must give the result's shape "
         "(floor(input size * scale)), which the attributes then only record")
_def("gather", (2, 2), {"axis": (INT, 0)}, infer=_gather, doc="indices non-negative after import if constant")
_def("tile", (1, 1), {"repeats": (INTS, REQUIRED)}, infer=_tile)
_def("expand", (1, 1), infer=None, doc="broadcast to the result type's shape")
_def("depth_to_space", (1, 1), {"blocksize": (INT, REQUIRED), "mode": (STR, "DCR")}, infer=_depth_to_space)
_def("space_to_depth", (1, 1), {"blocksize": (INT, REQUIRED)}, infer=_space_to_depth)
for k in ("reduce_mean", "reduce_max", "reduce_min", "reduce_sum", "reduce_prod", "reduce_l2", "reduce_sum_square"):
    _def(k, (1, 1), {"axes": (INTS, REQUIRED), "keepdims": (INT, 1)}, infer=_reduce,
         doc="axes non-negative and sorted; empty axes after import never means 'all' (the frontend lists them)")
for k in ("argmax", "argmin"):
    _def(k, (1, 1), {"axis": (INT, 0), "keepdims": (INT, 1), "select_last_index": (INT, 0)}, infer=_arg)
RNN = {"direction": (STR, "forward"), "hidden_size": (INT, REQUIRED), "activations": (STRS, REQUIRED),
       "activation_alpha": (FLOATS, []), "activation_beta": (FLOATS, []), "clip": (FLOAT, 0.0), "layout": (INT, 0)}
_def("lstm", (3, 8), {**RNN, "input_forget": (INT, 0)}, results=(1, 3), infer=_rnn,
     doc="operands X, W, R, B, sequence_lens, initial_h, initial_c, P (None where absent); clip 0 = none")
_def("gru", (3, 6), {**RNN, "linear_before_reset": (INT, 0)}, results=(1, 2), infer=_rnn,
     doc="operands X, W, R, B, sequence_lens, initial_h (None where absent)")
_def("partition", (0, -1), {"target": (STR, REQUIRED)}, results=(1, -1),
     doc="a subgraph (regions[0]) handed to another backend; operands map to its inputs, results to its outputs")


def _tiled(op):
    """The body's result shape (checked further by the verifier, which sees the region)."""
    if op.attrs["rows"] < 1:
        raise ValueError(f"rows = {op.attrs['rows']}: a strip has at least one row")
    body = op.regions[0] if op.regions else None
    return [tuple(v.type.shape) for v in body.outputs] if body is not None else None


_def("tiled", (1, 1), {"rows": (INT, REQUIRED)}, infer=_tiled,
     doc="a chain of channels-last layers (regions[0]: conv, average/max pool or unary elementwise ops, each "
         "reading the previous one's result, with constant weights) computed in horizontal strips of `rows` "
         "rows of the result, each strip through every layer at once: a layer computes only the rows the next "
         "one needs (overlapping halo rows recomputed), so the intermediate tensors never exist whole. Same "
         "numbers as the body; the operand maps to the body's input, the result to its output "
         "(ir/tiling.py: which rows each layer computes)")


def infer_shapes(op) -> Optional[list]:
    """Result shapes the op must have, or None where the result type is the only source."""
    d = OPS[op.kind]
    return d.infer(op) if d.infer else None


def fill_defaults(kind: str, attrs: dict) -> dict:
    """A copy of attrs with every declared default filled in."""
    out = dict(attrs)
    for name, (_, default) in OPS[kind].attrs.items():
        if name not in out and default is not REQUIRED:
            out[name] = list(default) if isinstance(default, list) else default
    return out
