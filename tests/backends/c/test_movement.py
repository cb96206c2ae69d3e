"""C kernels that move elements: transpose, concat, split, slice, expand, tile, depth_to_space,
space_to_depth, gather, reshape/identity copies; every dtype, and quantized tensors that share
one quantization. All cases build as one graph (once strict, once under the sanitizers)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.kernels import Unsupported, movement, select
from edgecc.backends.c.runner import have_cc
from edgecc.ir import Op, TensorType, Value
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Arg, Case, check, const, kernel_tests, onnx_ref, random_data, run_cases  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(7)
Q = Quant((0.05,), (3,))


def data(shape, dtype="float32"):
    return random_data(rng, shape, dtype)


CASES = []


def case(name, kind, attrs, operands, expected, **kw):
    CASES.append(Case(name, kind, attrs, operands, expected, **kw))


# ---- transpose ----------------------------------------------------------------------------
for i, (shape, perm, dt) in enumerate([
        ((2, 3, 4), [2, 0, 1], "float32"), ((2, 3, 4, 5), [0, 2, 3, 1], "int8"),
        ((2, 3, 4, 5), [0, 3, 1, 2], "uint8"), ((3, 5), [1, 0], "int64"), ((2, 3, 4), [1, 0, 2], "bool"),
        ((4, 3, 2, 2, 3), [4, 1, 3, 0, 2], "int16"), ((2, 3, 4), [0, 1, 2], "int32"),
        ((1, 6, 1, 5), [2, 0, 3, 1], "float32")]):
    x = data(shape, dt)
    case(f"transpose{i}", "transpose", dict(perm=perm), [x], onnx_ref("Transpose", [x], dict(perm=perm)))
xq = data((2, 3, 4), "int8")
case("transpose_quant", "transpose", dict(perm=[2, 1, 0]), [Arg(xq, quant=Q)], [xq.transpose(2, 1, 0).copy()],
     result_quant=Q)

# ---- concat -------------------------------------------------------------------------------
for i, (shapes, axis, dt) in enumerate([
        ([(2, 3), (2, 5)], 1, "float32"), ([(1, 3, 4), (2, 3, 4), (3, 3, 4)], 0, "int8"),
        ([(2, 3, 1), (2, 3, 2), (2, 3, 3)], 2, "bool"), ([(2, 1, 3), (2, 4, 3)], 1, "int64"),
        ([(4,), (1,), (2,)], 0, "uint8")]):
    xs = [data(s, dt) for s in shapes]
    ops_ = [const(x) if j == 1 else x for j, x in enumerate(xs)]  # a constant among runtime operands
    case(f"concat{i}", "concat", dict(axis=axis), ops_, onnx_ref("Concat", xs, dict(axis=axis)))
xs = [data((2, 2), "uint8"), data((2, 3), "uint8")]
case("concat_quant", "concat", dict(axis=1), [Arg(x, quant=Q) for x in xs], [np.concatenate(xs, 1)], result_quant=Q)

# ---- split --------------------------------------------------------------------------------
for i, (shape, axis, parts, dt) in enumerate([
        ((2, 7), 1, [2, 4, 1], "float32"), ((6, 2, 3), 0, [3, 3], "int16"), ((2, 3, 5), 2, [1, 1, 3], "bool"),
        ((2, 4, 3), 1, [1, 3], "int32")]):
    x = data(shape, dt)
    outs = onnx_ref("Split", [x, np.array(parts, np.int64)], dict(axis=axis), n_outputs=len(parts))
    case(f"split{i}", "split", dict(axis=axis, split=parts), [x], outs)

# ---- slice (normalized attributes; numpy slicing is the oracle) ----------------------------
for i, (shape, starts, ends, axes, steps, dt) in enumerate([
        ((5, 6), [1, 2], [4, 6], [0, 1], [1, 2], "float32"),
        ((5, 6), [4], [-1], [1], [-1], "int8"),
        ((4, 5, 6), [3, 5], [-1, 0], [0, 2], [-2, -3], "float32"),
        ((3, 4, 5), [1], [3], [1], [1], "bool"),
        ((2, 8, 3), [7, 0], [0, 2], [1, 2], [-3, 1], "int64"),
        ((6,), [5], [-1], [0], [-1], "uint8")]):
    x = data(shape, dt)
    sl = [slice(None)] * len(shape)
    for st, en, ax, step in zip(starts, ends, axes, steps):
        sl[ax] = slice(st, en if en >= 0 else None, step)
    case(f"slice{i}", "slice", dict(starts=starts, ends=ends, axes=axes, steps=steps), [x], [x[tuple(sl)].copy()])

# ---- expand, tile -------------------------------------------------------------------------
for i, (shape, out, dt) in enumerate([((3, 1), (2, 3, 4), "float32"), ((1,), (5,), "int8"),
                                      ((2, 1, 4), (2, 3, 4), "uint8"), ((1, 3, 1), (2, 3, 2), "bool")]):
    x = data(shape, dt)
    case(f"expand{i}", "expand", {}, [x], onnx_ref("Expand", [x, np.array(out, np.int64)], {}))
for i, (shape, reps, dt) in enumerate([((2, 3), [2, 3], "float32"), ((2, 1, 3), [1, 4, 1], "int8"),
                                       ((3, 2), [1, 1], "bool"), ((2, 2, 2), [2, 1, 3], "int32")]):
    x = data(shape, dt)
    case(f"tile{i}", "tile", dict(repeats=reps), [x], onnx_ref("Tile", [x, np.array(reps, np.int64)], {}))

# ---- depth_to_space / space_to_depth ------------------------------------------------------
for i, (shape, b, mode, dt) in enumerate([((1, 8, 2, 3), 2, "DCR", "float32"), ((2, 8, 2, 3), 2, "CRD", "int8"),
                                          ((1, 18, 2, 2), 3, "DCR", "uint8"), ((1, 4, 3, 3), 2, "CRD", "bool")]):
    x = data(shape, dt)
    case(f"d2s{i}", "depth_to_space", dict(blocksize=b, mode=mode), [x],
         onnx_ref("DepthToSpace", [x], dict(blocksize=b, mode=mode)))
for i, (shape, b, dt) in enumerate([((1, 2, 4, 6), 2, "float32"), ((2, 3, 6, 3), 3, "int16")]):
    x = data(shape, dt)
    case(f"s2d{i}", "space_to_depth", dict(blocksize=b), [x], onnx_ref("SpaceToDepth", [x], dict(blocksize=b)))

# ---- gather -------------------------------------------------------------------------------
for i, (shape, axis, idx, is_const, dt) in enumerate([
        ((5, 3), 0, np.array([4, -1, 0, 2], np.int64), False, "float32"),
        ((2, 6, 3), 1, np.array([[5, 0], [2, 2]], np.int32), True, "int8"),
        ((2, 3, 4), 2, np.array(3, np.int64), True, "float32"),  # scalar index: a strided slice
        ((2, 9), 1, np.array([1, 3, 5, 7], np.int64), True, "uint8"),  # evenly spaced: a strided slice
        ((4, 2, 2), 0, np.array([[3, -4, 1]], np.int32), False, "bool"),
        ((3, 4), 1, np.array([2, -1], np.int64), False, "int64"),
        ((3, 4), 1, np.array([3, 2, 1, 0], np.int32), True, "int16")]):
    x = data(shape, dt)
    case(f"gather{i}", "gather", dict(axis=axis), [x, const(idx) if is_const else idx],
         onnx_ref("Gather", [x, idx], dict(axis=axis)))
xq = data((4, 3), "uint8")
case("gather_quant", "gather", dict(axis=0), [Arg(xq, quant=Q), np.array([2, 0], np.int64)], [xq[[2, 0]]],
     result_quant=Q)

# ---- reshape / identity that are copies (constant operands) -------------------------------
w = data((2, 6))
case("reshape_const", "reshape", dict(shape=[3, 4]), [const(w)], [w.reshape(3, 4)])
wi = data((3, 2), "int8")
case("identity_const", "identity", {}, [const(wi, Q)], [wi], result_quant=Q)
wb = data((4,), "bool")
case("reshape_bool", "reshape", dict(shape=[2, 2]), [const(wb)], [wb.reshape(2, 2)])


results, test_moves, test_moves_sanitized = kernel_tests(CASES)


def test_quantization_mismatch_is_unsupported():
    """Copies move stored integers; requantizing copies belong to the integer kernels (qmove.py)."""
    x = Value("x", TensorType((2, 3), "i8", Quant((0.1,), (0,))))
    y = Value("y", TensorType((3, 2), "i8", Quant((0.2,), (0,))))
    with pytest.raises(Unsupported):
        movement.transpose(Op("transpose", [x], [y], fill_defaults("transpose", dict(perm=[1, 0])), "t"))


def test_contiguous_runs_are_memcpy():
    """Concat along axis 1 copies whole rows: one memcpy per row, no element loop."""
    x0, x1 = Value("a", TensorType((4, 8), "f32")), Value("b", TensorType((4, 8), "f32"))
    y = Value("y", TensorType((4, 16), "f32"))
    k = select(Op("concat", [x0, x1], [y], dict(axis=1), "c"))
    assert all(m["contiguous"] and m["run"] == 8 and m["loops"] == [4] for m in k.vars["moves"])


def test_alone_in_a_graph():
    """A layer alone in its graph, where gcc inlines it into the invoke function: gcc 12.2 -O2 on
    x86-64 has dropped this loop nest over pointers into the static arena (its ivopts pass; with
    -fno-ivopts the same C is right)."""
    x = np.arange(48, dtype=np.float32).reshape(1, 8, 2, 3)
    c = Case("alone", "depth_to_space", dict(blocksize=2, mode="CRD"), [x],
             onnx_ref("DepthToSpace", [x], dict(blocksize=2, mode="CRD")))
    check(c, run_cases([c])["alone"])
