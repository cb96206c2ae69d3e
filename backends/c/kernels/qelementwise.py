"""Integer elementwise kernels: quantize, dequantize, add/sub/mul of quantized tensors with their own
scales (broadcasting), and every unary function of an 8-bit quantized tensor as a 256-entry table.

The arithmetic follows onnxruntime's kernels for the same QDQ patterns, so results match bit for bit:
  - add (QLinearAdd): v = fma(a, sa/sc, fma(b, sb/sc, zc - (sa/sc * za + sb/sc * zb))) in float32,
    or, when one operand is a single value along the inner loop, that operand's term is added to the
    constant first (a float multiply and add) and the other one fused on;
  - sub (no fused kernel: dequantize, subtract, quantize, all in float32);
  - mul (QLinearMul): v = float((a - za) * (b - zb)) * (sa * sb / sc) + zc;
  then round half to even and saturate.
A unary function f is exact as a table: table[q] = quantize(f(dequantize(q))), computed here; when the
table is the identity clamped to a range (relu or clip with one quantization in and out) the kernel
clamps instead, which vectorizes.
"""
from __future__ import annotations

import math

import numpy as np

from . import CTYPES, Kernel, Unsupported, broadcast_strides, c_float, c_int, collapse, index_expr
from .quantized import quantized
from .requant import F32, lookup_table, per_tensor, qparams, qrange


def _erf(x):
    return np.vectorize(math.erf)(x)


def _softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


UNARY = {
    "relu": lambda x, a: np.maximum(x, 0),
    "clip": lambda x, a: np.minimum(np.maximum(x, a["min"]), a["max"]),
    "leaky_relu": lambda x, a: np.where(x < 0, F32(a["alpha"]) * x.astype(F32), x),
    "sigmoid": lambda x, a: 1 / (1 + np.exp(-x)),
    "tanh": lambda x, a: np.tanh(x),
    "hard_swish": lambda x, a: x * np.clip(x / 6 + 0.5, 0, 1),
    "hard_sigmoid": lambda x, a: np.clip(a["alpha"] * x + a["beta"], 0, 1),
    "identity": lambda x, a: x,
    "exp": lambda x, a: np.exp(x),
    "log": lambda x, a: np.log(x),
    "sqrt": lambda x, a: np.sqrt(x),
    "reciprocal": lambda x, a: 1 / x,
    "abs": lambda x, a: np.abs(x),
    "neg": lambda x, a: -x,
    "floor": lambda x, a: np.floor(x),
    "ceil": lambda x, a: np.ceil(x),
    "round": lambda x, a: np.rint(x),
    "erf": lambda x, a: _erf(x),
    "softplus": lambda x, a: _softplus(x),
    "softsign": lambda x, a: x / (1 + np.abs(x)),
    "mish": lambda x, a: x * np.tanh(_softplus(x)),
    "elu": lambda x, a: np.where(x < 0, a["alpha"] * (np.exp(x) - 1), x),
    "selu": lambda x, a: np.where(x <= 0, a["gamma"] * (a["alpha"] * np.exp(x) - a["alpha"]), a["gamma"] * x),
    "gelu": lambda x, a: (0.5 * x * (1 + _erf(x / math.sqrt(2)))) if a.get("approximate", "none") == "none"
    else 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
}


def loop_vars(out_shape, operands) -> dict:
    """Collapsed loop dims and the index expression of each operand (broadcast) and of the result."""
    dims, sts = collapse(out_shape, [broadcast_strides(v.type.shape, out_shape) for v in operands]
                         + [broadcast_strides(out_shape, out_shape)])
    return dict(dims=dims, loads=[index_expr(s) for s in sts[:-1]], store=index_expr(sts[-1]),
                inner_scalar=[s[-1] == 0 for s in sts[:-1]])


def unary_table_kernel(op, x, y, table, loads=None) -> Kernel:
    """y[i] = table[x[i]] (or a clamp when the table is a clamped identity); loads: (dims, load, store)."""
    if loads is None:
        lv = loop_vars(y.type.shape, [x])
        dims, load, store = lv["dims"], lv["loads"][0], lv["store"]
    else:
        dims, load, store = loads
    v = dict(dims=dims, load=load, store=store, in_ctype=CTYPES[x.type.dtype], out_ctype=CTYPES[y.type.dtype])
    codes = np.arange(256)
    stored = codes - 256 * (codes >= 128) if x.type.dtype == "i8" else codes
    if x.type.dtype == y.type.dtype:
        lo, hi = int(table.astype(np.int64).min()), int(table.astype(np.int64).max())
        if np.array_equal(table.astype(np.int64), np.clip(stored, lo, hi)):
            tmin, tmax = qrange(x.type.dtype)  # a bound at the type's limit needs no comparison
            expr = "e"
            if hi < tmax:
                expr = f"({expr} > {hi} ? {hi} : {expr})"
            if lo > tmin:
                expr = f"({expr} < {lo} ? {lo} : {expr})"
            return Kernel("q_unary.c.j2", dict(v, clamp=expr))
    return Kernel("q_unary.c.j2", dict(v, clamp=None), consts=[("table", table)])


@quantized(*UNARY)
def qunary(op):
    x, y = op.operands[0], op.result
    if x.type.quant is None and y.type.quant is None:
        return None
    if op.kind == "identity" and x.type.quant == y.type.quant and x.type.dtype == y.type.dtype:
        return None  # a plain copy: the data-movement kernels
    if x.type.dtype not in ("i8", "u8") or y.type.dtype not in ("i8", "u8"):
        raise Unsupported(f"{op.kind} of quantized {x.type.dtype} -> {y.type.dtype}: only 8-bit tensors map by table")
    fn = UNARY[op.kind]
    table = lookup_table(lambda r: fn(r, op.attrs), x, y)
    return unary_table_kernel(op, x, y, table)


@quantized("quantize")
def qquantize(op):
    x, y = op.operands[0], op.result
    if x.type.dtype != "f32" or y.type.quant is None:
        raise Unsupported(f"quantize of {x.type.dtype} to {y.type.dtype} without quant")
    lo, hi = qrange(y.type.dtype)
    v = _axis_vars(y)
    return Kernel("q_quantize.c.j2", dict(v, out_ctype=CTYPES[y.type.dtype], wide=y.type.dtype in ("i32",),
                                          qmin=c_int(lo, "i32"), qmax=c_int(hi, "i32"), qminf=c_float(lo),
                                          qmaxf=c_float(hi)), consts=_axis_consts(y))


@quantized("dequantize")
def qdequantize(op):
    x, y = op.operands[0], op.result
    if x.type.quant is None or y.type.dtype != "f32":
        raise Unsupported(f"dequantize of {x.type.dtype} without quant to {y.type.dtype}")
    v = _axis_vars(x)
    return Kernel("q_dequantize.c.j2", dict(v, in_ctype=CTYPES[x.type.dtype]), consts=_axis_consts(x))


def _axis_vars(v) -> dict:
    """Loop split [outer][channels][inner] around the quantization axis (one channel when per tensor)."""
    q, shape = v.type.quant, v.type.shape
    s, z = qparams(v)
    if q.axis is None or len(q.scale) == 1:
        return dict(outer=1, channels=1, inner=v.type.size, scale=c_float(s[0]), zp=int(z[0]), per_axis=False)
    outer = int(np.prod(shape[:q.axis], dtype=np.int64))
    inner = int(np.prod(shape[q.axis + 1:], dtype=np.int64))
    return dict(outer=outer, channels=shape[q.axis], inner=inner, scale=None, zp=None, per_axis=True)


def _axis_consts(v) -> list:
    q = v.type.quant
    if q.axis is None or len(q.scale) == 1:
        return []
    s, z = qparams(v)
    return [("scale", s.astype(F32)), ("zp", z.astype(np.int32))]


@quantized("add", "sub", "mul")
def qbinary(op):
    a, b, y = op.operands[0], op.operands[1], op.result
    if all(v.type.quant is None for v in (a, b, y)):
        return None
    for v in (a, b, y):
        if v.type.dtype not in ("i8", "u8") or v.type.quant is None:
            raise Unsupported(f"quantized {op.kind} needs 8-bit quantized operands and result, "
                              f"%{v.name} is {v.type.dtype}")
    sa, za = per_tensor(a, op.kind)
    sb, zb = per_tensor(b, op.kind)
    sc, zc = per_tensor(y, op.kind)
    lo, hi = qrange(y.type.dtype)
    lv = loop_vars(y.type.shape, [a, b])
    v = dict(lv, a_ctype=CTYPES[a.type.dtype], b_ctype=CTYPES[b.type.dtype], out_ctype=CTYPES[y.type.dtype],
             op=op.kind, qmin=c_float(lo), qmax=c_float(hi), a_scalar=lv["inner_scalar"][0],
             b_scalar=lv["inner_scalar"][1], qlo=lo, qhi=hi,
             # both operands of the result's shape, int8: one flat loop (Helium's 4-lane one on the M55)
             same_shape=len(lv["dims"]) == 1 and lv["loads"] == [lv["store"]] * 2
             and {a.type.dtype, b.type.dtype, y.type.dtype} == {"i8"})
    if op.kind == "add":
        ra, rb = F32(F32(sa) / F32(sc)), F32(F32(sb) / F32(sc))
        zpc = F32(F32(zc) - F32(F32(ra * F32(za)) + F32(rb * F32(zb))))
        v.update(RA=c_float(ra), RB=c_float(rb), ZC=c_float(zpc))
    elif op.kind == "sub":
        v.update(SA=c_float(sa), SB=c_float(sb), SC=c_float(sc), ZA=za, ZB=zb, ZCF=c_float(zc))
    else:
        v.update(R=c_float(F32(F32(F32(sa) * F32(sb)) / F32(sc))), ZA=za, ZB=zb, ZCF=c_float(zc))
    return Kernel("q_binary.c.j2", v)
