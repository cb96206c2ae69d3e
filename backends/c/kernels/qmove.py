"""Data movement that requantizes: reshape, identity, transpose and concat whose operands and result
are quantized differently (the stored bytes change through a 256-entry table). With one quantization
throughout they are plain copies, which the data-movement kernels do: these return None then.
"""
from __future__ import annotations

import numpy as np

from . import CTYPES, Kernel, Unsupported, collapse, index_expr, strides
from .qelementwise import unary_table_kernel
from .quantized import quantized
from .requant import requant_table


def _same(x, y) -> bool:
    return x.type.quant == y.type.quant and x.type.dtype == y.type.dtype


def _table(x, y):
    if x.type.quant is None or y.type.quant is None:
        raise Unsupported("requantizing copy between a quantized and an unquantized tensor")
    return requant_table(x, y)


@quantized("reshape")
def qreshape(op):
    x, y = op.operands[0], op.result
    if _same(x, y):
        return None
    return unary_table_kernel(op, x, y, _table(x, y), loads=([y.type.size], "i0", "i0"))


@quantized("transpose")
def qtranspose(op):
    x, y = op.operands[0], op.result
    if _same(x, y):
        return None
    perm = op.attrs["perm"]
    xs = strides(x.type.shape)
    dims, (s_in, s_out) = collapse(y.type.shape, [[xs[p] for p in perm], strides(y.type.shape)])
    return unary_table_kernel(op, x, y, _table(x, y), loads=(dims, index_expr(s_in), index_expr(s_out)))


@quantized("concat")
def qconcat(op):
    y = op.result
    xs = op.inputs()
    if all(_same(x, y) for x in xs):
        return None
    axis = op.attrs["axis"] % y.type.rank
    outer = int(np.prod(y.type.shape[:axis], dtype=np.int64))
    inner_y = int(np.prod(y.type.shape[axis:], dtype=np.int64))
    parts, consts, offset = [], [], 0
    for j, x in enumerate(op.operands):
        if x is None:
            continue
        size = int(np.prod(x.type.shape[axis:], dtype=np.int64))
        table = None if _same(x, y) else _table(x, y)
        if table is not None:
            consts.append((f"table{j}", table))
        parts.append(dict(j=j, size=size, offset=offset, table=table is not None, ctype=CTYPES[x.type.dtype]))
        offset += size
    return Kernel("q_concat.c.j2", dict(parts=parts, OUTER=outer, INNER_Y=inner_y), consts=consts)
