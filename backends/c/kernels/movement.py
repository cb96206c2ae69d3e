"""Data movement kernels: transpose, concat, split, slice, expand, tile, depth_to_space,
space_to_depth, gather, and reshape/identity when they are not views (a constant operand).

They only move stored elements, so they work for every dtype and on quantized tensors whose
operands and results share one quantization. All but a runtime gather are a "strided copy": one
or more loop nests with baked-in strides, `dst[dst_offset + sum i_k * dst_stride_k] =
src[src_offset + sum i_k * src_stride_k]`, with adjacent dims collapsed and innermost runs that are
contiguous on both sides copied with memcpy. Each op only says which strides and offsets it means.
"""
from __future__ import annotations

import numpy as np

from . import (CTYPES, Kernel, Unsupported, broadcast_strides, collapse, kernel, require_same_quant,
               strides)
from . import elementwise  # noqa: F401  its table also lists identity: load it first so the copy below wins


def affine(offset: int, strides_, first: int = 0) -> str:
    """C expression `offset + i0 * s0 - i1 * s1 ...` over loop counters numbered from `first`."""
    text = str(offset) if offset else ""
    for k, s in enumerate(strides_):
        if s == 0:
            continue
        term = f"i{first + k}" if abs(s) == 1 else f"i{first + k} * {abs(s)}"
        if not text:
            text = term if s > 0 else f"-{term}"
        else:
            text += f" + {term}" if s > 0 else f" - {term}"
    return text or "0"


def pointer(base: str, offset_expr: str) -> str:
    return base if offset_expr == "0" else f"{base} + {offset_expr}"


def move(src: str, dst: str, dims, src_strides, dst_strides, src_offset: int = 0, dst_offset: int = 0,
         comment: str = ""):
    """One loop nest of a strided copy, ready for strided_copy.c.j2; None when it moves nothing."""
    if any(d == 0 for d in dims):
        return None
    keep = [k for k, d in enumerate(dims) if d != 1]  # size-1 dims have no stride that matters
    dims, (s_st, d_st) = collapse([dims[k] for k in keep], [[src_strides[k] for k in keep],
                                                            [dst_strides[k] for k in keep]])
    outer, run = dims[:-1], dims[-1]
    n = len(outer)
    contiguous = s_st[-1] == 1 and d_st[-1] == 1
    m = dict(src=src, dst=dst, loops=outer, run=run, comment=comment, contiguous=contiguous and run > 1)
    if m["contiguous"]:
        m["src_ptr"] = pointer(src, affine(src_offset, s_st[:-1]))
        m["dst_ptr"] = pointer(dst, affine(dst_offset, d_st[:-1]))
    else:
        if run == 1:  # no innermost loop: the counters of the outer loops say it all
            s_st, d_st = s_st[:-1], d_st[:-1]
        m["src_elem"] = f"{src}[{affine(src_offset, s_st)}]"
        m["dst_elem"] = f"{dst}[{affine(dst_offset, d_st)}]"
        m["inner"] = run > 1
    m["counter"] = f"i{n}"
    return m


def copy_kernel(op, moves) -> Kernel:
    return Kernel("strided_copy.c.j2", dict(moves=[m for m in moves if m is not None],
                                            ctype=CTYPES[op.results[0].type.dtype]))


def _check_moves_only(op, data_operands) -> None:
    """Pure data movement: every data operand has the result's dtype and quantization."""
    for v in data_operands:
        for r in op.results:
            if v.type.dtype != r.type.dtype:
                raise Unsupported(f"{op.kind}: operand %{v.name} is {v.type.dtype}, result is {r.type.dtype}")
    for r in op.results:
        require_same_quant(op, [r] + list(data_operands))


def permuted_move(src_shape, perm, src: str = "x0", dst: str = "y0"):
    """Copy of a tensor of `src_shape` transposed by `perm` into a contiguous result."""
    st = strides(src_shape)
    dims = [src_shape[p] for p in perm]
    return move(src, dst, dims, [st[p] for p in perm], strides(dims))


@kernel("reshape", "identity")
def flat_copy(op):
    """Not a view (a constant operand, see memory_plan.is_view): the bytes are copied once."""
    x = op.operands[0]
    _check_moves_only(op, [x])
    n = op.result.type.size
    return copy_kernel(op, [move("x0", "y0", [n], [1], [1])])


@kernel("transpose")
def transpose(op):
    x = op.operands[0]
    _check_moves_only(op, [x])
    return copy_kernel(op, [permuted_move(x.type.shape, op.attrs["perm"])])


@kernel("depth_to_space")
def depth_to_space(op):
    x = op.operands[0]
    _check_moves_only(op, [x])
    n, c, h, w = x.type.shape
    b = op.attrs["blocksize"]
    if op.attrs["mode"] == "DCR":  # channels are (b1, b2, c'): depth-column-row
        view, perm = (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2)
    else:  # CRD: channels are (c', b1, b2)
        view, perm = (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3)
    return copy_kernel(op, [permuted_move(view, perm)])


@kernel("space_to_depth")
def space_to_depth(op):
    x = op.operands[0]
    _check_moves_only(op, [x])
    n, c, h, w = x.type.shape
    b = op.attrs["blocksize"]
    return copy_kernel(op, [permuted_move((n, c, h // b, b, w // b, b), (0, 3, 5, 1, 2, 4))])


def pieces_along(axis: int, whole_shape, piece_shapes, gather: bool) -> list:
    """concat (gather: pieces x_j -> y0) and split (x0 -> pieces y_j): one move per piece, each at
    its offset along `axis` of the whole tensor."""
    whole_st, at, moves = strides(whole_shape), 0, []
    for j, shape in enumerate(piece_shapes):
        offset, where = at * whole_st[axis], f"[{at}:{at + shape[axis]}] along axis {axis}"
        if gather:
            moves.append(move(f"x{j}", "y0", shape, strides(shape), whole_st, dst_offset=offset,
                              comment=f"x{j} -> y0{where}"))
        else:
            moves.append(move("x0", f"y{j}", shape, whole_st, strides(shape), src_offset=offset,
                              comment=f"x0{where} -> y{j}"))
        at += shape[axis]
    return moves


@kernel("concat")
def concat(op):
    _check_moves_only(op, op.operands)
    return copy_kernel(op, pieces_along(op.attrs["axis"], op.result.type.shape,
                                        [v.type.shape for v in op.operands], gather=True))


@kernel("split")
def split(op):
    x = op.operands[0]
    _check_moves_only(op, [x])
    return copy_kernel(op, pieces_along(op.attrs["axis"], x.type.shape, [r.type.shape for r in op.results],
                                        gather=False))


@kernel("slice")
def slice_(op):
    x = op.operands[0]
    _check_moves_only(op, [x])
    ist = strides(x.type.shape)
    src_st, offset = list(ist), 0
    a = op.attrs
    for start, ax, step in zip(a["starts"], a["axes"], a["steps"]):
        offset += start * ist[ax]
        src_st[ax] = ist[ax] * step  # negative steps walk backwards from `start`
    out = op.result.type.shape
    return copy_kernel(op, [move("x0", "y0", out, src_st, strides(out), src_offset=offset)])


@kernel("expand")
def expand(op):
    x = op.operands[0]
    _check_moves_only(op, [x])
    out = op.result.type.shape
    return copy_kernel(op, [move("x0", "y0", out, broadcast_strides(x.type.shape, out), strides(out))])


@kernel("tile")
def tile(op):
    """Each axis of length d repeated r times is two loops (repeat, d): the source ignores the first."""
    x = op.operands[0]
    _check_moves_only(op, [x])
    shape, reps = x.type.shape, op.attrs["repeats"]
    ist, ost = strides(shape), strides(op.result.type.shape)
    dims, src_st, dst_st = [], [], []
    for d, r, s, o in zip(shape, reps, ist, ost):
        dims += [r, d]
        src_st += [0, s]
        dst_st += [d * o, o]
    return copy_kernel(op, [move("x0", "y0", dims, src_st, dst_st)])


@kernel("gather")
def gather(op):
    x, idx = op.operands
    _check_moves_only(op, [x])
    if idx.type.dtype not in ("i32", "i64") or idx.type.quant is not None:
        raise Unsupported(f"gather indices of type {idx.type.dtype}")
    shape, axis = x.type.shape, op.attrs["axis"]
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    count = idx.type.size
    if idx.is_const:
        flat = idx.data.reshape(-1).astype(np.int64)
        flat = np.where(flat < 0, flat + shape[axis], flat)
        if ((flat < 0) | (flat >= shape[axis])).any():
            raise Unsupported(f"gather: constant index out of range for axis of length {shape[axis]}")
        step = int(flat[1] - flat[0]) if count > 1 else 1
        if count == 0 or (np.diff(flat) == step).all():
            # evenly spaced constant indices are a strided slice: no index array to read
            first = int(flat[0]) if count else 0
            m = move("x0", "y0", [outer, count, inner], [shape[axis] * inner, step * inner, 1],
                     [count * inner, inner, 1], src_offset=first * inner)
            k = copy_kernel(op, [m])
            k.replaced = (1,)  # the index array is not read: it need not take flash
            return k
    return Kernel("gather.c.j2", dict(outer=outer, count=count, inner=inner, axis_len=shape[axis],
                                      ctype=CTYPES[x.type.dtype], idx_ctype=CTYPES[idx.type.dtype]))
