"""Lifting rules for data movement: reshapes, transposes, slicing, padding, gathering, resizing.

Shape-like inputs become attributes: Reshape, Flatten, Squeeze and Unsqueeze all become
`reshape` with the full static result shape; Split sizes come from the result shapes (so the
opset-13 input, the older attribute and opset 18's num_outputs read alike).
"""
from __future__ import annotations

import numpy as np

from .context import NodeView, lifts


@lifts("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshape(n: NodeView):
    n.emit("reshape", [n.input(0)], {"shape": list(n.out_shape())})


@lifts("Transpose")
def transpose(n: NodeView):
    rank = len(n.in_shape(0))
    perm = n.attr("perm", list(reversed(range(rank))))
    n.emit("transpose", [n.input(0)], {"perm": [n.axis(p, rank, "perm entry") for p in perm]})


@lifts("Concat")
def concat(n: NodeView):
    rank = len(n.in_shape(0))
    n.emit("concat", [v for v in n.inputs() if v is not None], {"axis": n.axis(int(n.attr("axis")), rank)})


@lifts("Split")
def split(n: NodeView):
    rank = len(n.in_shape(0))
    axis = n.axis(int(n.attr("axis", 0)), rank)
    sizes = [n.out_shape(i)[axis] for i in range(len(n.node.output))]
    types = [n.out_type(i) for i in range(len(n.node.output))]
    n.emit("split", [n.input(0)], {"axis": axis, "split": sizes}, types=types)


def slice_bounds(start: int, end: int, step: int, dim: int) -> tuple[int, int]:
    """ONNX Slice bounds clamped as the IR wants them (ends may be -1 for negative steps)."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


@lifts("Slice")
def slice_(n: NodeView):
    shape = n.in_shape(0)
    starts, ends = n.const_ints(1, "starts"), n.const_ints(2, "ends")
    axes = n.const_ints(3, "axes") or list(range(len(starts)))
    steps = n.const_ints(4, "steps") or [1] * len(starts)
    attrs = {"starts": [], "ends": [], "axes": [], "steps": []}
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = n.axis(axis, len(shape))
        if step == 0:
            n.fail("a Slice step is 0")
        start, end = slice_bounds(start, end, step, shape[axis])
        for key, v in zip(("starts", "ends", "axes", "steps"), (start, end, axis, step)):
            attrs[key].append(v)
    n.emit("slice", [n.input(0)], attrs)


@lifts("Pad")
def pad(n: NodeView):
    """pads and value are attributes before opset 11, inputs after (axes from opset 18)."""
    mode = n.choice("mode", "constant", ("constant", "reflect", "edge", "wrap"))
    if n.opset < 11:
        n.emit("pad", [n.input(0)], {"pads": list(n.attr("pads")), "mode": mode, "value": float(n.attr("value", 0.0))})
        return
    rank = len(n.in_shape(0))
    pads = n.const_ints(1, "pads")
    axes = n.const_ints(3, "axes")
    if axes is not None:
        full = [0] * (2 * rank)
        for j, a in enumerate(axes):
            a = n.axis(a, rank)
            full[a], full[a + rank] = pads[j], pads[j + len(axes)]
        pads = full
    value = n.const(2, "constant_value")
    value = 0.0 if value is None or np.asarray(value).size == 0 else float(np.asarray(value).reshape(()))
    n.emit("pad", [n.input(0)], {"pads": pads, "mode": mode, "value": value})


@lifts("Gather")
def gather(n: NodeView):
    shape = n.in_shape(0)
    axis = n.axis(int(n.attr("axis", 0)), len(shape))
    indices = n.input(1)
    if n.is_const(1):
        raw = np.asarray(n.const(1))
        if raw.size and (raw.min() < -shape[axis] or raw.max() >= shape[axis]):
            n.fail(f"gather index out of range for a dimension of {shape[axis]}")
        if raw.size and raw.min() < 0:
            indices = n.constant(np.where(raw < 0, raw + shape[axis], raw).astype(raw.dtype), "indices")
    n.emit("gather", [n.input(0), indices], {"axis": axis})


@lifts("Tile")
def tile(n: NodeView):
    n.emit("tile", [n.input(0)], {"repeats": n.const_ints(1, "repeats")})


@lifts("Expand")
def expand(n: NodeView):
    n.emit("expand", [n.input(0)])


@lifts("DepthToSpace")
def depth_to_space(n: NodeView):
    mode = n.choice("mode", "DCR", ("DCR", "CRD"))
    n.emit("depth_to_space", [n.input(0)], {"blocksize": int(n.attr("blocksize")), "mode": mode})


@lifts("SpaceToDepth")
def space_to_depth(n: NodeView):
    """DCR (the only mode before opset 28) is the IR op; CRD keeps channels outermost, which is a
    reshape to blocks, a transpose and a reshape back."""
    b, mode = int(n.attr("blocksize")), n.choice("mode", "DCR", ("DCR", "CRD"))
    if mode == "DCR":
        n.emit("space_to_depth", [n.input(0)], {"blocksize": b})
        return
    t = n.in_type(0)
    N, C, H, W = t.shape
    blocks = (N, C, H // b, b, W // b, b)
    x = n.emit("reshape", [n.input(0)], {"shape": list(blocks)}, types=[t.with_(shape=blocks)], bind=False,
               tag="blocks").result
    moved = (N, C, b, b, H // b, W // b)
    y = n.emit("transpose", [x], {"perm": [0, 1, 3, 5, 2, 4]}, types=[t.with_(shape=moved)], bind=False).result
    n.emit("reshape", [y], {"shape": list(n.out_shape())}, tag="merge")


REDUCE = {"ReduceMean": "reduce_mean", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min",
          "ReduceSum": "reduce_sum", "ReduceProd": "reduce_prod", "ReduceL2": "reduce_l2",
          "ReduceSumSquare": "reduce_sum_square"}


@lifts(*REDUCE)
def reduce(n: NodeView):
    """axes are an attribute before opset 18 (13 for ReduceSum), an optional input after; no axes
    means all of them unless noop_with_empty_axes, which makes the op an identity."""
    rank = len(n.in_shape(0))
    axes_from_input = n.opset >= (13 if n.op_type == "ReduceSum" else 18)
    axes = n.const_ints(1, "axes") if axes_from_input else n.attr("axes")
    if not axes:
        if int(n.attr("noop_with_empty_axes", 0)):
            n.emit("identity", [n.input(0)])
            return
        axes = list(range(rank))
    axes = sorted({n.axis(a, rank) for a in axes})
    n.emit(REDUCE[n.op_type], [n.input(0)], {"axes": axes, "keepdims": int(n.attr("keepdims", 1))})


@lifts("ArgMax", "ArgMin")
def arg_reduce(n: NodeView):
    rank = len(n.in_shape(0))
    attrs = {"axis": n.axis(int(n.attr("axis", 0)), rank), "keepdims": int(n.attr("keepdims", 1)),
             "select_last_index": int(n.attr("select_last_index", 0))}
    n.emit(n.op_type.lower(), [n.input(0)], attrs)
