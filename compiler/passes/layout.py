"""Channels-last layout: NCHW models run NHWC inside, and the transposes that costs cancel out.

Rewrites, all declared patterns applied together until none matches:
  * conv, average_pool, max_pool, global_average_pool, global_max_pool with channels_last = 0 on
    2-D (NCHW) or 1-D (NCW) data -> transpose to NHWC, the op with channels_last = 1, transpose back
    to NCHW; conv weights are transposed to OHWI here, once (a per-axis quantization on axis 0,
    the output channels, stays on axis 0). Values in NHWC order carry the type layout "nhwc"
    ("nwc"), weights "ohwi" ("owi"), as the interpreter reads them.
  * transposes move down, past ops that do not care about the layout: elementwise unary ops,
    clip, quantize, dequantize, cast; binary and variadic elementwise ops whose other operands
    are constants (permuted here) or transposed the same way; concat (axis remapped), pad (pads
    permuted), softmax / log_softmax (axis remapped), reductions (axes remapped), slice (axes
    remapped), resize (scales and roi permuted: it resizes each axis on its own).
    op(transpose(x)) becomes transpose(op'(x)).
  * transpose(transpose(x)) -> one transpose by the composed permutation, or x when it is the
    identity;
  * a transpose that only moves size-1 dims -> a reshape (a view: no code, no copy);
    reshape(reshape(x)) -> one reshape; a reshape to x's own shape -> x.

Why: MCU kernels are fastest channels-last: the innermost loop runs over contiguous channels
(depthwise convs, 1x1 convs as matrix products, CMSIS-NN's layout), and TFLite-born models are
NHWC anyway, imported as NCHW with a transpose at the input. Every op the layout reaches pushes
the transposes one step further, until they meet their inverses and vanish; in the MLPerf Tiny
models none is left. Set option `layout = "nchw"` to keep the model's own layout.
"""
from __future__ import annotations

import numpy as np

from edgecc.compiler.rewrite import Pattern, apply_patterns
from edgecc.ir.types import Quant, TensorType

from . import register
from .fold_constants import SIMPLIFY

SPATIAL_OPS = ("conv", "average_pool", "max_pool", "global_average_pool", "global_max_pool")
DATA_LAYOUT = {3: "nwc", 4: "nhwc"}
WEIGHT_LAYOUT = {3: "owi", 4: "ohwi"}
UNARY = """relu sigmoid tanh exp log sqrt reciprocal abs neg floor ceil round erf softplus softsign mish
hard_swish identity not leaky_relu elu selu hard_sigmoid gelu clip cast quantize dequantize""".split()
ELEMENTWISE = """add sub mul div pow mod and or equal less greater less_or_equal greater_or_equal prelu
max min sum mean where""".split()
REDUCE = "reduce_mean reduce_max reduce_min reduce_sum reduce_prod reduce_l2 reduce_sum_square".split()


# ---- permutations and types ------------------------------------------------------------------
def to_last(rank):
    """[N, C, *spatial] -> [N, *spatial, C]"""
    return [0, *range(2, rank), 1]


def to_first(rank):
    """[N, *spatial, C] -> [N, C, *spatial]"""
    return [0, rank - 1, *range(1, rank - 1)]


def inverse(perm):
    return [int(i) for i in np.argsort(perm)]


def transposed_type(t: TensorType, perm, layout=None) -> TensorType:
    """The type of np.transpose(data, perm): dims reordered, a per-axis quant axis following its dim."""
    q = t.quant
    if q is not None and q.per_axis:
        q = Quant(q.scale, q.zero_point, inverse(perm)[q.axis])
    return TensorType(tuple(t.shape[p] for p in perm), t.dtype, q, layout)


def transposed_const(v, perm, rw, layout=None):
    t = transposed_type(v.type, perm, layout)
    return rw.const(f"{v.name}_{layout}" if layout else f"{v.name}_t", np.transpose(v.data, perm), t)


# ---- into channels-last ----------------------------------------------------------------------
def _match_channels_first(op, rw):
    if rw.ctx is not None and rw.ctx.options.get("layout", "nhwc") != "nhwc":
        return None
    x = op.operands[0]
    if op.attrs.get("channels_last", 0) or x.type.rank not in DATA_LAYOUT or len(op.results) != 1:
        return None
    return True


def _to_channels_last(op, found, rw):
    x, y = op.operands[0], op.result
    rank = x.type.rank
    layout = DATA_LAYOUT[rank]
    x_last = rw.op("transpose", [x], {"perm": to_last(rank)},
                   [(f"{x.name}_{layout}", transposed_type(x.type, to_last(rank), layout))]).result
    operands = [x_last]
    if op.kind == "conv":
        w = op.operands[1]
        if w.is_const:
            operands.append(transposed_const(w, to_last(rank), rw, WEIGHT_LAYOUT[rank]))
        else:
            operands.append(rw.op("transpose", [w], {"perm": to_last(rank)},
                                  [(f"{w.name}_{WEIGHT_LAYOUT[rank]}",
                                    transposed_type(w.type, to_last(rank), WEIGHT_LAYOUT[rank]))]).result)
        operands += op.operands[2:]
    y_last = rw.op(op.kind, operands, dict(op.attrs, channels_last=1),
                   [(f"{y.name}_{layout}", transposed_type(y.type, to_last(rank), layout))], op.name).result
    return rw.op("transpose", [y_last], {"perm": to_first(rank)}, [y]).result


# ---- transposes down past layout-agnostic ops ------------------------------------------------
def _transpose_of(v, rw):
    t = rw.producer(v, "transpose")
    return t.attrs["perm"] if t is not None else None


def _aligned_operands(data, rw):
    """The common permutation of the transposed operands among `data` (the others must be
    constants), or None."""
    perms = [_transpose_of(v, rw) for v in data]
    found = [p for p in perms if p is not None]
    if not found or any(p != found[0] for p in found):
        return None
    rank = len(found[0])
    for v, p in zip(data, perms):
        if p is None and not (v.is_const and v.type.rank <= rank):
            return None
    return found[0]


def _untransposed(v, perm, rw):
    """The value op' reads in place of `v`: the transpose's source, or the constant permuted back."""
    if not v.is_const:
        return v.producer.operands[0]
    rank = len(perm)
    c = v.data.reshape((1,) * (rank - v.type.rank) + v.data.shape)
    t = v.type.with_(shape=c.shape)
    if t.quant is not None and t.quant.per_axis:
        t = t.with_(quant=Quant(t.quant.scale, t.quant.zero_point, t.quant.axis + rank - v.type.rank))
    inv = inverse(perm)
    return rw.const(f"{v.name}_t", np.transpose(c, inv), transposed_type(t, inv))


def _source_layout(operands, rank):
    """The layout op' computes in: its transposed operands' sources' (kept while the rank is)."""
    src = next(v.producer.operands[0] for v in operands if not v.is_const)
    return src.type.layout if src.type.rank == rank else None


def _push(op, perm, rw, attrs=None, result_perm=None):
    """op(transpose_perm(x), ...) -> transpose_result_perm(op'(x, ...)), attrs changed by `attrs`."""
    new_operands = [_untransposed(v, perm, rw) for v in op.operands]
    result_perm = perm if result_perm is None else result_perm
    rank = op.result.type.rank
    inner = transposed_type(op.result.type, inverse(result_perm), _source_layout(op.operands, rank))
    y = rw.op(op.kind, new_operands, dict(op.attrs, **(attrs or {})), [(f"{op.result.name}_t", inner)],
              op.name).result
    return rw.op("transpose", [y], {"perm": list(result_perm)}, [op.result]).result


def _match_elementwise(op, rw):
    """Elementwise ops (and concat): every operand transposed the same way or a constant."""
    if len(op.results) != 1 or any(v is None for v in op.operands):
        return None
    perm = _aligned_operands(op.operands, rw)
    if perm is None or len(perm) != op.result.type.rank:
        return None
    return perm


def _match_one(op, rw):
    """Ops with one data operand whose attributes are remapped (see _remap)."""
    if len(op.operands) != 1 or len(op.results) != 1:
        return None
    return _transpose_of(op.operands[0], rw)


def _reduce_result_perm(perm, axes):
    """The permutation left after reducing `axes` (of the transposed tensor) away, keepdims = 0."""
    kept_src = [perm[i] for i in range(len(perm)) if i not in axes]
    order = sorted(kept_src)
    return [order.index(a) for a in kept_src]


def _remap(op, perm, rw):
    a = op.attrs
    if op.kind in ("softmax", "log_softmax", "concat"):
        return _push(op, perm, rw, {"axis": perm[a["axis"]]})
    if op.kind == "pad":
        r = len(perm)
        pads = [0] * (2 * r)
        for i, p in enumerate(perm):
            pads[p], pads[r + p] = a["pads"][i], a["pads"][r + i]
        return _push(op, perm, rw, {"pads": pads})
    if op.kind == "slice":
        return _push(op, perm, rw, {"axes": [perm[ax] for ax in a["axes"]]})
    if op.kind == "resize":  # separable: each axis resized by its own scale (and roi)
        r = len(perm)
        scales, roi = [0.0] * r, list(a["roi"])
        new_roi = [0.0] * len(roi)
        for i, p in enumerate(perm):
            scales[p] = a["scales"][i]
            if roi:
                new_roi[p], new_roi[r + p] = roi[i], roi[r + i]
        return _push(op, perm, rw, {"scales": scales, "roi": new_roi})
    # reductions
    axes = sorted(perm[ax] for ax in a["axes"])
    if a["keepdims"]:
        return _push(op, perm, rw, {"axes": axes})
    result_perm = _reduce_result_perm(perm, a["axes"])
    return _push(op, perm, rw, {"axes": axes}, result_perm=result_perm)


# ---- transposes among themselves -------------------------------------------------------------
def _match_transpose_pair(op, rw):
    inner = rw.producer(op.operands[0], "transpose")
    if inner is None:
        return None
    perm = [inner.attrs["perm"][p] for p in op.attrs["perm"]]
    x = inner.operands[0]
    if perm == list(range(len(perm))):
        # x itself, or where x cannot take the result's layout tag, a reshape: a view, no code
        return x, (None if relabel_ok(op.result, x, rw) else "reshape")
    return x, perm


def _merge_transposes(op, found, rw):
    x, perm = found
    if perm is None:
        return relabel(op.result, x)
    if perm == "reshape":
        return rw.op("reshape", [x], {"shape": list(x.type.shape)}, [op.result], op.name).result
    return rw.op("transpose", [x], {"perm": perm}, [op.result], op.name).result


# ---- layout tags on bypassed values ----------------------------------------------------------
# The interpreter (and kernels reading types) take a value's layout from its type, so a value
# that replaces another must carry the replaced value's layout. Retagging the new value is only
# safe when nothing reading it yet looks at layouts.
LAYOUT_READERS = SPATIAL_OPS + ("conv_transpose", "batch_normalization", "instance_normalization", "lrn")


def relabel_ok(old, new, rw) -> bool:
    """Whether `old`'s readers may read `new` (same numbers in the same order; layout tags may differ)."""
    a, b = old.type, new.type
    if (a.shape, a.dtype, a.quant) != (b.shape, b.dtype, b.quant) or not rw.can_bypass(old, new):
        return False
    if a.layout == b.layout:
        return True
    if new.is_const:
        return False
    # the tag is what the ops that read or write this value by layout see: theirs must not change
    writer = new.producer
    return not (writer is not None and writer.kind in LAYOUT_READERS) and \
        not any(u.kind in LAYOUT_READERS for u in rw.users(new))


def relabel(old, new):
    """`new`, carrying `old`'s layout tag (call after relabel_ok)."""
    if new.type.layout != old.type.layout:
        new.type = new.type.with_(layout=old.type.layout)
    return new


def _match_relabel(op, rw):
    x = op.operands[0]
    return relabel_ok(op.result, x, rw) or None


RELABEL = Pattern("drop_relabel", ("reshape", "identity"), _match_relabel, lambda op, f, rw: relabel(op.result, op.operands[0]))


def moves_only_unit_dims(shape, perm) -> bool:
    """True when the dims larger than 1 keep their order: the bytes do not move."""
    big = [p for p in perm if shape[p] != 1]
    return big == sorted(big)


def _match_unit_transpose(op, rw):
    x = op.operands[0]
    return moves_only_unit_dims(x.type.shape, op.attrs["perm"]) or None


def _to_reshape(op, found, rw):
    return rw.op("reshape", [op.operands[0]], {"shape": list(op.result.type.shape)}, [op.result], op.name).result


PATTERNS = [
    Pattern("to_channels_last", SPATIAL_OPS, _match_channels_first, _to_channels_last),
    Pattern("merge_transposes", ("transpose",), _match_transpose_pair, _merge_transposes),
    Pattern("unit_transpose_to_reshape", ("transpose",), _match_unit_transpose, _to_reshape),
    Pattern("push_transpose", tuple(UNARY + ELEMENTWISE), _match_elementwise, _push),
    Pattern("push_transpose_remap", ("softmax", "log_softmax", "pad", "slice", "resize", *REDUCE), _match_one,
            _remap),
    Pattern("push_transpose_concat", ("concat",), _match_elementwise, _remap),
    *SIMPLIFY,
    RELABEL,
]


def count_transposes(graph) -> int:
    return sum(op.kind == "transpose" for op in graph.ops)


@register("layout")
def run(graph, ctx):
    apply_patterns(graph, PATTERNS, ctx, record="layout")
    return graph
