"""Lifting rules for quantization: QuantizeLinear, DequantizeLinear and the integer layers.

Quantization lives on IR types. DequantizeLinear of a constant is that constant with a quantized
type; of a computed value it is a `dequantize` op recorded as pending, which qdq.py later folds
into the value's type when it can. QuantizeLinear is a `quantize` op (qdq.py merges it into the
op that computes its input). QLinearConv, QLinearMatMul, ConvInteger and MatMulInteger read their
integer operands through the same pending dequantization and produce a quantized result type:
ConvInteger and MatMulInteger read operands as q(1.0, zero_point) and give int32 q(1.0, 0).

Parameters a type cannot hold (computed at run time, or blocked) are spelled out as float
arithmetic instead (arith.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from edgecc.ir.graph import Value
from edgecc.ir.types import Quant

from .arith import dequantize_arith, quantize_arith
from .context import NodeView, float_type, lifts
from .rules_nn import conv_attrs


@dataclass
class QParams:
    """Where a tensor's quantization parameters are among a node's inputs (None: scale 1.0, zero
    point 0), the axis of per-axis parameters, and the block size of blocked ones (0: none)."""
    scale: Optional[int]
    zero_point: Optional[int]
    axis: int
    block_size: int = 0


def quant_from(n: NodeView, scale: np.ndarray, zero_point: Optional[np.ndarray], shape: tuple,
               axis: int) -> Quant:
    """Per-tensor quantization when scale has one element, else per slice along `axis`."""
    scales = [float(s) for s in np.asarray(scale).reshape(-1)]
    zps = [0] * len(scales) if zero_point is None else [int(z) for z in np.asarray(zero_point).reshape(-1)]
    if len(zps) == 1 and len(scales) > 1:
        zps = zps * len(scales)
    if len(scales) == 1 and len(zps) > 1:
        scales = scales * len(zps)
    if len(scales) != len(zps):
        n.fail(f"scale has {len(scales)} values, zero_point {len(zps)}")
    if any(not 0 < s < math.inf for s in scales):
        n.fail("a quantization scale is not a positive finite number")
    if len(scales) == 1:
        return Quant((scales[0],), (zps[0],))
    axis = n.axis(axis, len(shape))
    if shape[axis] != len(scales):
        n.fail(f"{len(scales)} quantization scales do not fit axis {axis} of shape {list(shape)}")
    return Quant(tuple(scales), tuple(zps), axis)


def static_quant(n: NodeView, p: QParams, shape: tuple) -> Optional[Quant]:
    """The parameters as a Quant, or None when they are blocked or not constants."""
    if p.block_size or (p.scale is not None and not n.is_const(p.scale)) \
            or (p.zero_point is not None and n.has_input(p.zero_point) and not n.is_const(p.zero_point)):
        return None
    scale = np.float32(1.0) if p.scale is None else n.const(p.scale)
    zero = n.const(p.zero_point) if p.zero_point is not None else None
    return quant_from(n, scale, zero, shape, p.axis)


def param_value(n: NodeView, i: Optional[int], p: QParams, shape: tuple, fill: float, tag: str) -> Value:
    """Input i as float32 broadcastable against a tensor of `shape`: per-tensor as it is, per-axis
    along p.axis, blocked repeated p.block_size times along p.axis."""
    rank = len(shape)
    axis = n.axis(p.axis, rank) if rank else 0
    if i is None or not n.has_input(i):
        return n.constant(np.float32(fill), tag)
    if n.is_const(i):
        a = np.asarray(n.const(i)).astype(np.float32)
        if p.block_size:
            a = np.repeat(a, p.block_size, axis=axis)
        elif a.size > 1:
            a = a.reshape([-1 if d == axis else 1 for d in range(rank)])
        else:
            a = a.reshape(())
        return n.constant(a, tag)
    v = n.input(i)
    t = v.type
    if t.dtype != "f32":
        v = n.helper("cast", [v], {"to": "f32"}, float_type(t.shape))
    if p.block_size:
        blocks = t.shape[:axis + 1] + (1,) + t.shape[axis + 1:]
        v = n.helper("reshape", [v], {"shape": list(blocks)}, float_type(blocks))
        spread = t.shape[:axis + 1] + (p.block_size,) + t.shape[axis + 1:]
        v = n.helper("expand", [v], {}, float_type(spread))
        full = t.shape[:axis] + (t.shape[axis] * p.block_size,) + t.shape[axis + 1:]
        v = n.helper("reshape", [v], {"shape": list(full)}, float_type(full))
    elif t.size > 1:
        along = tuple(t.size if d == axis else 1 for d in range(rank))
        v = n.helper("reshape", [v], {"shape": list(along)}, float_type(along))
    return v


def read_as(n: NodeView, i: int, quant: Quant, tag: str) -> Value:
    """Input i's integers read with `quant`: a quantized constant, or a pending dequantize."""
    if n.is_const(i):
        return n.ctx.constant(n.node.input[i], n.const(i), quant, n.node)
    op = n.emit("dequantize", [n.input(i)], types=[float_type(n.in_shape(i))], bind=False, tag=tag)
    n.ctx.pending_dequant[op] = quant
    return op.result


def dequantized(n: NodeView, i: int, p: QParams, tag: str) -> Value:
    """Input i read as real numbers: through a quantized type when the parameters allow, else
    by arithmetic."""
    shape = n.in_shape(i)
    q = static_quant(n, p, shape)
    if q is not None:
        return read_as(n, i, q, tag)
    return dequantize_arith(n.helper, n.input(i), param_value(n, p.scale, p, shape, 1.0, f"{tag}_scale"),
                            param_value(n, p.zero_point, p, shape, 0.0, f"{tag}_zero_point"))


def quantized_result(n: NodeView, kind: str, operands: list, attrs: dict, p: QParams) -> None:
    """Add the node's op with output 0 quantized by p (a quantized result type, or arithmetic)."""
    out = n.out_type()
    q = static_quant(n, p, out.shape)
    if q is not None:
        n.ctx.produced_quantized.append(n.emit(kind, operands, attrs, types=[out.with_(quant=q)]).result)
        return
    real = operands[0] if kind == "quantize" else n.helper(kind, operands, attrs, float_type(out.shape))
    y = quantize_arith(n.helper, real, param_value(n, p.scale, p, out.shape, 1.0, "y_scale"),
                       param_value(n, p.zero_point, p, out.shape, 0.0, "y_zero_point"), out.dtype)
    n.bind(0, y, rename=True)


def linear_params(n: NodeView) -> QParams:
    """The parameters of QuantizeLinear / DequantizeLinear (inputs 1 and 2)."""
    return QParams(1, 2 if n.has_input(2) else None, int(n.attr("axis", 1)), int(n.attr("block_size", 0)))


@lifts("QuantizeLinear")
def quantize_linear(n: NodeView):
    quantized_result(n, "quantize", [n.input(0)], {}, linear_params(n))


@lifts("DequantizeLinear")
def dequantize_linear(n: NodeView):
    p = linear_params(n)
    q = static_quant(n, p, n.in_shape(0))
    if q is None:
        n.bind(0, dequantized(n, 0, p, "x"), rename=True)
    elif n.is_const(0):
        n.bind(0, read_as(n, 0, q, "x"))
    else:
        n.ctx.pending_dequant[n.emit("dequantize", [n.input(0)])] = q


def bias_dequantized(n: NodeView, i: int, x: QParams, w: QParams, w_shape: tuple) -> Value:
    """int32 bias of a quantized conv: scale x_scale * w_scale (per output channel), zero point 0."""
    xq, wq = static_quant(n, x, n.in_shape(0)), static_quant(n, w, w_shape)
    if xq is None or wq is None:
        n.fail("a QLinearConv bias needs constant input and weight scales")
    scales = tuple(xq.scale[0] * s for s in wq.scale)
    return read_as(n, i, Quant(scales, (0,) * len(scales), 0 if wq.per_axis else None), "bias")


@lifts("QLinearConv")
def qlinear_conv(n: NodeView):
    xp, wp = QParams(1, 2, 1), QParams(4, 5, 0)
    operands = [dequantized(n, 0, xp, "x"), dequantized(n, 3, wp, "w")]
    if n.has_input(8):
        operands.append(bias_dequantized(n, 8, xp, wp, n.in_shape(3)))
    quantized_result(n, "conv", operands, conv_attrs(n, n.in_shape(0), n.in_shape(3)), QParams(6, 7, 1))


@lifts("ConvInteger")
def conv_integer(n: NodeView):
    xp = QParams(None, 2 if n.has_input(2) else None, 1)
    wp = QParams(None, 3 if n.has_input(3) else None, 0)
    operands = [dequantized(n, 0, xp, "x"), dequantized(n, 1, wp, "w")]
    n.emit("conv", operands, conv_attrs(n, n.in_shape(0), n.in_shape(1)),
           types=[n.out_type().with_(quant=Quant((1.0,), (0,)))])


def matmul_axes(n: NodeView, a: int, b: int) -> tuple[int, int]:
    """Per-row parameters of A are along its second-last axis, per-column ones of B its last."""
    return max(len(n.in_shape(a)) - 2, 0), len(n.in_shape(b)) - 1


@lifts("QLinearMatMul")
def qlinear_matmul(n: NodeView):
    a_axis, b_axis = matmul_axes(n, 0, 3)
    operands = [dequantized(n, 0, QParams(1, 2, a_axis), "a"), dequantized(n, 3, QParams(4, 5, b_axis), "b")]
    quantized_result(n, "matmul", operands, {}, QParams(6, 7, 0))


@lifts("MatMulInteger")
def matmul_integer(n: NodeView):
    a_axis, b_axis = matmul_axes(n, 0, 1)
    ap = QParams(None, 2 if n.has_input(2) else None, a_axis)
    bp = QParams(None, 3 if n.has_input(3) else None, b_axis)
    n.emit("matmul", [dequantized(n, 0, ap, "a"), dequantized(n, 1, bp, "b")],
           types=[n.out_type().with_(quant=Quant((1.0,), (0,)))])
