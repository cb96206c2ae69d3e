"""Integer matrix products: fully_connected, matmul and gemm on int8/uint8 operands, accumulated in int32
and requantized to the result type, scaled to float (a result without quant, as onnxruntime's
MatMulIntegerToFloat), or stored raw (an unquantized i32 result, as MatMulInteger).

With constant weights every output is a dot product over contiguous K (weights [N][K], reordered at
compile time when given [K][N]; 4-bit ones packed, int4.py): as int16 vectors on the host (qdot.py), with
SMLAD on Arm cores with the DSP extension (qdsp.py, int8 or 4-bit without weight zero points), else
here: the activation zero point is folded into the bias (bias - zp_x * sum_k w) and a weight zero point
costs one running sum of the row.
With two run-time operands (attention-like matmuls) each output row keeps an int32 row acc[N] and adds one row of B
per k, the zero points applied through the row sums of A and the constant K * zp_a * zp_b.
"""
from __future__ import annotations

import numpy as np

from . import CTYPES, Kernel, Unsupported, compact, int4
from .qconv import out_setup
from .qdot import dot_kernel, rows_geometry
from .qdsp import fc_dsp
from .qmve import applies as mve_applies, fc_mve
from .quantized import family, quantized
from .requant import F32, accumulator_bound, bias_values, check_int32, per_tensor, qparams


def _check_int8(op, *vals):
    for v in vals:  # (4-bit weights are constants: the weights kernels take them)
        if v.type.dtype not in ("i8", "u8") and not (v.type.dtype == "i4" and v.is_const):
            raise Unsupported(f"integer {op.kind} of a {v.type.dtype} operand")


def _weights_kernel(op, x, w, wnk, wq, bias, fbias=None, replaced=(), alpha=1.0):
    """A product with constant weights wnk [N, K] (int64 stored values), wq: (scales, zero points)."""
    y = op.result
    n, k = wnk.shape
    rows = x.type.size // k
    sx, zx = per_tensor(x, op.kind)
    sw, zw = wq
    w4 = w.type.dtype == "i4"
    if w4:  # computed as the int8 product of weights 16 w (int4.py)
        wnk, sw = int4.int8_view(wnk, sw, zw)
    acc_scale = (F32(sx) * sw).astype(F32)
    if alpha != 1.0:
        acc_scale = (acc_scale * F32(alpha)).astype(F32)
    b = bias_values(bias, acc_scale, n)
    zw = np.broadcast_to(zw, (n,)).astype(np.int64)
    folded = b - zx * wnk.sum(axis=1) + k * zx * zw
    out, consts = out_setup(op, y, acc_scale, accumulator_bound(b, wnk - zw[:, None], x.type.dtype, zx))
    small = compact.fully_connected(op, rows, wnk, b, out, consts, zx, x, w, zw, fbias)
    if small is not None:
        return small
    fam = family()
    if fam == "host":
        return dot_kernel(rows_geometry(rows, k, n, zx), wnk - zw[:, None], b, out, consts, x, w, fbias, w4=w4)
    if fam in ("dsp", "mve") and x.type.dtype == "i8" and w.type.dtype in ("i8", "i4") and not np.any(zw != 0):
        if fam == "mve" and not w4 and mve_applies(out, fbias):
            return fc_mve(rows, wnk, b, out, consts, zx)
        return fc_dsp(rows, wnk, b, out, consts, zx, fbias, w4=w4)
    consts.append(("bias", check_int32(folded, "bias with the zero points folded in")))
    if w4:  # rows of an even length, packed: whole bytes
        consts.append(("w", int4.packed_rows(int4.padded(wnk, 2))))
        replaced = (1,)
    elif replaced:
        consts.append(("w", np.ascontiguousarray(wnk).astype(w.type.np_dtype)))
    if np.any(zw != 0):
        consts.append(("wzp", check_int32(zw, "weight zero point")))
    if fbias is not None:
        consts.append(("fbias", np.ascontiguousarray(np.broadcast_to(np.asarray(fbias, F32).reshape(-1), (n,)))))
    v = dict(out, x_ctype=CTYPES[x.type.dtype], w_ctype=CTYPES[w.type.dtype], ROWS=rows, K=k, N=n,
             own_weights=bool(replaced), has_wzp=bool(np.any(zw != 0)), fbias=fbias is not None, w4=w4)
    return Kernel("q_fc.c.j2", v, consts=consts, replaced=replaced)


def _float_bias(op, bias, y):
    """A float bias is added after scaling (float result only)."""
    if bias is not None and bias.type.dtype == "f32":
        if y.type.dtype != "f32":
            raise Unsupported(f"integer {op.kind} with a float bias and an integer result")
        if not bias.is_const:
            raise Unsupported("a float bias computed at run time")
        return bias.data, None
    return None, bias


@quantized("fully_connected")
def qfully_connected(op):
    x, w = op.operands[0], op.operands[1]
    bias = op.operands[2] if len(op.operands) > 2 else None
    _check_int8(op, x, w)
    if not w.is_const:
        raise Unsupported("integer fully_connected with weights computed at run time")
    fb, bias = _float_bias(op, bias, op.result)
    return _weights_kernel(op, x, w, np.asarray(w.data, np.int64), qparams(w), bias, fb)


@quantized("gemm")
def qgemm(op):
    a, b = op.operands[0], op.operands[1]
    c = op.operands[2] if len(op.operands) > 2 else None
    _check_int8(op, a, b)
    if op.attrs["trans_a"] or not b.is_const:
        raise Unsupported("integer gemm needs A as given and constant B")
    if op.attrs["beta"] != 1.0 and c is not None:
        raise Unsupported("integer gemm with beta != 1")
    wnk = np.asarray(b.data, np.int64)
    sw, zw = qparams(b)
    if not op.attrs["trans_b"]:
        wnk = wnk.T
        if b.type.quant is not None and b.type.quant.per_axis and b.type.quant.axis == 0 and len(sw) > 1:
            raise Unsupported("integer gemm with B quantized per row of K")
    if c is not None and c.type.size not in (1, wnk.shape[0]):
        raise Unsupported("integer gemm with a 2-D C")
    fb, c = _float_bias(op, c, op.result)
    return _weights_kernel(op, a, b, wnk, (sw, zw), c, fb, replaced=(1,) if not op.attrs["trans_b"] else (),
                           alpha=float(op.attrs["alpha"]))


@quantized("matmul")
def qmatmul(op):
    a, b, y = op.operands[0], op.operands[1], op.result
    _check_int8(op, a, b)
    if b.is_const and b.type.rank == 2:
        sw, zw = qparams(b)
        if b.type.quant is not None and b.type.quant.per_axis and b.type.quant.axis == 0 and len(sw) > 1:
            raise Unsupported("integer matmul with B quantized per row of K")
        return _weights_kernel(op, a, b, np.asarray(b.data, np.int64).T, (sw, zw), None, replaced=(1,))
    sa, za = per_tensor(a, "matmul")
    sb, zb = per_tensor(b, "matmul")
    ash, bsh = list(a.type.shape), list(b.type.shape)
    if len(ash) == 1:
        ash = [1] + ash
    if len(bsh) == 1:
        bsh = bsh + [1]
    m, k, n = ash[-2], ash[-1], bsh[-1]
    batch = y.type.size // (m * n)
    a_batch, b_batch = int(np.prod(ash[:-2], dtype=np.int64)), int(np.prod(bsh[:-2], dtype=np.int64))
    if a_batch not in (1, batch) or b_batch not in (1, batch):
        raise Unsupported("integer matmul with a partial batch broadcast")
    out, consts = out_setup(op, y, np.asarray([F32(sa) * F32(sb)], F32))
    v = dict(out, a_ctype=CTYPES[a.type.dtype], b_ctype=CTYPES[b.type.dtype], BATCH=batch, M=m, K=k, N=n,
             A_STEP=m * k if a_batch > 1 else 0, B_STEP=k * n if b_batch > 1 else 0, ZA=za, ZB=zb, KZZ=k * za * zb)
    return Kernel("q_matmul.c.j2", v, consts=consts)
