"""Float32 matrix products: fully_connected (w [N, K], bias, fused activation), matmul (N-d,
batched with broadcasting) and gemm (alpha, beta, transposes, C broadcast).

All three become one register-tiled GEMM (register_tile.py): y[r][n] = sum_k a[r][k] * b[k][n].
Each step broadcasts a[r][k] and multiply-adds it into contiguous accumulators for the columns
n, so a constant right-hand side is reordered at compile time into a kernel-private table,
[column tile][k][tile columns], that the inner loop reads front to back. A runtime right-hand side
is read in place (vectorized when its rows are contiguous).
"""
from __future__ import annotations

import numpy as np

from . import Kernel, broadcast_strides, c_float, collapse, index_expr, kernel
from .float32 import activation_expr, operand, require_float32
from .register_tile import column_tiles


def pack_columns(b: np.ndarray, tiles) -> np.ndarray:
    """[..., K, N] -> per matrix, per column tile: [K][tile width]."""
    mats = b.reshape(-1, *b.shape[-2:])
    out = []
    for mat in mats:
        for t in tiles:
            for i in range(t.count):
                n0 = t.start + i * t.width
                out.append(mat[:, n0:n0 + t.width].reshape(-1))
    return np.concatenate(out).astype(np.float32)


def gemm_kernel(rows, cols, depth, a_st, b_st, b_mat, batch=None, bias=None, act="v", scale="",
                c_fill=None) -> Kernel:
    """The shared GEMM, y = act(scale * a b (+ bias row | + c_fill)).

    a_st: element strides (row, k) of a (x0). b_mat: the right-hand side as a [..., K, N] array
    when constant (packed into a table), else None and b_st gives the strides (k, n) of x1.
    batch: (dims, [a, b, y] strides) of the batch loops. bias: an [N] row added as tiles are
    stored. c_fill: a C expression of the loop counters r, n written to y first; the tiles then add
    into it."""
    tiles = column_tiles(cols, rows, depth)
    consts, replaced = [], []
    if b_mat is not None:
        consts.append(("b", pack_columns(b_mat, tiles)))
        replaced.append(1)
    if bias is not None:
        consts.append(("bias", np.asarray(bias, np.float32).reshape(cols)))
        replaced.append(2)
    dims, sts = batch or ([1], [[0], [0], [0]])
    if dims == [1]:  # one matrix: no batch loop
        sts = [[0], [0], [0]]
    return Kernel("gemm.c.j2", dict(
        rows=rows, cols=cols, depth=depth, a_r=a_st[0], a_k=a_st[1], packed=b_mat is not None,
        b_k=b_st[0] if b_mat is None else 0, b_n=b_st[1] if b_mat is None else 1,
        has_bias=bias is not None, act=act, scale=scale, c_fill=c_fill, tiles=[t.as_vars(rows) for t in tiles],
        dims=dims, a_off=index_expr(sts[0]), b_off=index_expr(sts[1]), y_off=index_expr(sts[2])),
        consts=consts, replaced=tuple(replaced))


def _batch(a_shape, b_shape, a_mat, b_mat, y_mat):
    """Batch loops over the broadcast leading dims: (dims, [a, b, y] element strides)."""
    out = tuple(np.broadcast_shapes(a_shape, b_shape))
    st = [[s * a_mat for s in broadcast_strides(a_shape, out)], [s * b_mat for s in broadcast_strides(b_shape, out)],
          [s * y_mat for s in broadcast_strides(out, out)]]
    return collapse(out, st) if out else ([1], [[0], [0], [0]])


@kernel("fully_connected")
def fully_connected(op):
    require_float32(op)
    x, w = op.operands[0], op.operands[1]
    b = operand(op, 2)
    n, k = w.type.shape
    bias, c_fill = None, None
    if b is not None and b.is_const:
        bias = np.asarray(b.data, np.float32)
    elif b is not None:  # a runtime bias fills y first; the product then adds into it
        c_fill = "x2[n]"
    b_mat = np.asarray(w.data, np.float32).T if w.is_const else None
    return gemm_kernel(x.type.size // k, n, k, (k, 1), None if w.is_const else (1, k), b_mat, bias=bias,
                       act=activation_expr(op), c_fill=c_fill)


@kernel("matmul")
def matmul(op):
    require_float32(op)
    a, b = op.operands
    a2 = (1,) + tuple(a.type.shape) if a.type.rank == 1 else tuple(a.type.shape)
    b2 = tuple(b.type.shape) + (1,) if b.type.rank == 1 else tuple(b.type.shape)
    m, k, n = a2[-2], a2[-1], b2[-1]
    batch = _batch(a2[:-2], b2[:-2], m * k, k * n, m * n)
    if b.is_const:
        return gemm_kernel(m, n, k, (k, 1), None, np.asarray(b.data, np.float32).reshape(b2), batch=batch)
    return gemm_kernel(m, n, k, (k, 1), (n, 1), None, batch=batch)


@kernel("gemm")
def gemm(op):
    require_float32(op)
    a, b = op.operands[0], op.operands[1]
    c = operand(op, 2)
    at = op.attrs
    alpha, beta = float(at["alpha"]), float(at["beta"])
    m, n = op.result.type.shape
    k = a.type.shape[0] if at["trans_a"] else a.type.shape[1]
    a_st = (1, m) if at["trans_a"] else (k, 1)
    b_st = (1, k) if at["trans_b"] else (n, 1)
    b_mat = None
    if b.is_const:
        b_mat = np.asarray(b.data, np.float32)
        b_mat = b_mat.T if at["trans_b"] else b_mat
    scale = c_float(alpha) if alpha != 1.0 else ""
    bias, c_fill = None, None
    if c is not None and beta != 0.0:
        cs = broadcast_strides(c.type.shape, (m, n))
        if c.is_const and cs[0] == 0:  # one row for all: a bias row added as the tiles are stored
            row = np.asarray(c.data, np.float32).reshape(-1)
            bias = np.broadcast_to(row[:n] if cs[1] else row[:1], (n,)) * np.float32(beta)
        else:
            at_c = " + ".join(f"{v} * {s}" if s != 1 else v for v, s in zip("rn", cs) if s) or "0"
            c_fill = f"{c_float(beta)} * x2[{at_c}]"
    return gemm_kernel(m, n, k, a_st, None if b.is_const else b_st, b_mat, bias=bias, scale=scale, c_fill=c_fill)
