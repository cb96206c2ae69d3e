"""What a `tiled` op computes, strip by strip: the rows each layer of its chain reads and writes.

A tiled op (see ir/ops.py) runs its body, a chain of channels-last layers, in horizontal strips of
`rows` rows of the chain's result. Working backwards from a strip of the result, each layer must
produce the rows the next one reads; those rows come from a window of its own input, clipped to
the input, with the padding the clipped part stood for. Neighbouring strips overlap in the inner
layers (the halo), and those rows are computed once per strip that needs them.

Everything here is plain arithmetic on the IR: the memory planner sizes a tiled op's buffers from
it, the C backend turns each layer's share of a strip into an ordinary op on fewer rows (`variant`),
and analysis.macs counts the recomputed work with it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from .graph import Op, Value
from .ops import OPS, UNARY

# single-operand ops whose output row r depends on input row r alone
ROW_MAPS = set(UNARY) | {"leaky_relu", "elu", "selu", "hard_sigmoid", "gelu", "clip", "cast", "quantize",
                         "dequantize"}
WINDOWED = ("conv", "average_pool", "max_pool")


@dataclass(frozen=True)
class Rows:
    """One layer's share of a strip: output rows [out_start, out_start + out_rows) computed from input
    rows [in_start, in_start + in_rows), with pad_top / pad_bottom rows of padding around them."""

    in_start: int
    in_rows: int
    pad_top: int
    pad_bottom: int
    out_start: int
    out_rows: int


@dataclass(frozen=True)
class RowRule:
    """How a layer's output rows map to its input rows: kernel height, stride, dilation, pads (NHWC axis 1)."""

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad_top: int = 0
    pad_bottom: int = 0


def why_not_row_local(op) -> str | None:
    """None when `op` can be a layer of a tiled chain (computed a few rows at a time), else why not."""
    if len(op.results) != 1:
        return "more than one result"
    x = op.operands[0] if op.operands else None
    if x is None or x.is_const:
        return "no run-time first operand"
    if any(v is not None and not v.is_const for v in op.operands[1:]):
        return "more than one run-time operand"
    if x.type.rank != 4 or x.type.shape[0] != 1 or op.result.type.rank != 4:
        return "not a single 4-D (NHWC) tensor"
    if op.kind in ROW_MAPS:
        return None if x.type.shape == op.result.type.shape else "changes the shape"
    if op.kind not in WINDOWED:
        return f"{op.kind} is not computed row by row"
    if not op.attrs.get("channels_last"):
        return "channels first (rows are not contiguous)"
    if op.attrs.get("ceil_mode"):
        return "ceil_mode pooling"
    return None


def row_rule(op) -> RowRule:
    if op.kind in ROW_MAPS:
        return RowRule()
    a = op.attrs
    if op.kind == "conv":
        kernel = op.operands[1].type.shape[1]  # OHWI
    else:
        kernel = a["kernel_shape"][0]
    return RowRule(kernel, a["strides"][0], a.get("dilations", [1, 1])[0], a["pads"][0], a["pads"][2])


def chain(body) -> list:
    """The body's ops, checked to form a chain: each reads the previous one's result (the first the body's
    input), and the last produces the body's output. Raises ValueError naming what breaks it."""
    if len(body.inputs) != 1 or len(body.outputs) != 1 or not body.ops:
        raise ValueError("a tiled body has one input, one output and at least one op")
    prev = body.inputs[0]
    for op in body.ops:
        why = why_not_row_local(op)
        if why:
            raise ValueError(f"layer '{op.name}' ({op.kind}) cannot be tiled: {why}")
        if op.operands[0] is not prev:
            raise ValueError(f"layer '{op.name}' ({op.kind}) does not read the previous layer's result")
        prev = op.result
    if body.outputs[0] is not prev:
        raise ValueError("the body's output is not its last layer's result")
    return list(body.ops)


def layer_rows(op, out_start: int, out_stop: int) -> Rows:
    """The input window of output rows [out_start, out_stop) of one layer, clipped to its input."""
    r = row_rule(op)
    height = op.operands[0].type.shape[1]
    lo = out_start * r.stride - r.pad_top
    hi = (out_stop - 1) * r.stride - r.pad_top + (r.kernel - 1) * r.dilation + 1
    start, stop = max(lo, 0), min(hi, height)
    if stop <= start:
        raise ValueError(f"layer '{op.name}': output rows {out_start}..{out_stop - 1} read only padding")
    return Rows(start, stop - start, start - lo, hi - stop, out_start, out_stop - out_start)


def strips(layers: list, rows: int) -> list:
    """For each strip of `rows` result rows (the last may be shorter): each layer's Rows, first layer first."""
    height = layers[-1].result.type.shape[1]
    out = []
    for start in range(0, height, rows):
        a, b = start, min(start + rows, height)
        shares = []
        for op in reversed(layers):
            share = layer_rows(op, a, b)
            shares.append(share)
            a, b = share.in_start, share.in_start + share.in_rows
        out.append(shares[::-1])
    return out


def _with_rows(t, rows: int):
    return t.with_(shape=(t.shape[0], rows, *t.shape[2:]))


def variant(op, share: Rows) -> Op:
    """`op` on its share of a strip: the same layer on share.in_rows input rows, padded by the share's pads
    instead of its own at the top and bottom, giving share.out_rows rows. Constants are shared, not copied."""
    x = op.operands[0]
    attrs = copy.deepcopy(op.attrs)
    if op.kind in WINDOWED:
        pads = list(attrs["pads"])
        pads[0], pads[2] = share.pad_top, share.pad_bottom
        attrs["pads"] = pads
    operand = Value(x.name, _with_rows(x.type, share.in_rows))
    result = Value(op.result.name, _with_rows(op.result.type, share.out_rows))
    return Op(op.kind, [operand] + list(op.operands[1:]), [result], attrs, op.name)


def check_variant(op, v: Op) -> None:
    """The variant's own shape rule gives the rows its share promises (a bug otherwise)."""
    d = OPS[v.kind]
    if d.infer is not None:
        assert tuple(d.infer(v)[0]) == tuple(v.result.type.shape), (op.name, v.result.type.shape)


def computed_macs(layers: list, rows: int, macs_of) -> int:
    """Multiply-accumulates of the whole chain run strip by strip (halo rows counted each time they are
    computed); macs_of(op) gives one layer's MACs over its full output."""
    total = 0
    for shares in strips(layers, rows):
        for op, s in zip(layers, shares):
            total += macs_of(op) * s.out_rows // op.result.type.shape[1]
    return total

