"""C kernels for reductions and argmax/argmin: axes, keepdims, dtypes, ties and select_last_index."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.kernels import Unsupported, select
from edgecc.backends.c.runner import have_cc
from edgecc.ir import Op, TensorType, Value
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Arg, Case, kernel_tests, onnx_ref, random_data  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(5)
KINDS = {"reduce_mean": "ReduceMean", "reduce_max": "ReduceMax", "reduce_min": "ReduceMin",
         "reduce_sum": "ReduceSum", "reduce_prod": "ReduceProd", "reduce_l2": "ReduceL2",
         "reduce_sum_square": "ReduceSumSquare"}


def reduce_ref(kind, x, axes, keepdims):
    return onnx_ref(KINDS[kind], [x, np.array(axes, np.int64)],
                    dict(keepdims=keepdims, noop_with_empty_axes=1))


CASES = []
x3 = random_data(rng, (2, 3, 4))
for kind in KINDS:
    for axes, keep in [([1], 1), ([0, 2], 0), ([2], 1), ([0, 1, 2], 0), ([], 1), ([0], 0)]:
        name = f"{kind}_{''.join(map(str, axes)) or 'none'}_k{keep}"
        CASES.append(Case(name, kind, dict(axes=axes, keepdims=keep), [x3], reduce_ref(kind, x3, axes, keep)))
xg = random_data(rng, (1, 16, 7, 7))
CASES.append(Case("mean_spatial", "reduce_mean", dict(axes=[2, 3]), [xg], reduce_ref("reduce_mean", xg, [2, 3], 1)))
x5 = random_data(rng, (2, 1, 3, 2, 4))
CASES.append(Case("sum_13", "reduce_sum", dict(axes=[1, 3], keepdims=0), [x5], reduce_ref("reduce_sum", x5, [1, 3], 0)))
CASES.append(Case("prod_04", "reduce_prod", dict(axes=[0, 4]), [x5], reduce_ref("reduce_prod", x5, [0, 4], 1)))

for dt in ("int8", "uint8", "int16", "int32", "int64", "bool"):
    xi = random_data(rng, (3, 4, 5), dt)
    for kind, f in (("reduce_max", np.max), ("reduce_min", np.min)):
        CASES.append(Case(f"{kind}_{dt}", kind, dict(axes=[0, 2], keepdims=1), [xi],
                          [f(xi, axis=(0, 2), keepdims=True)]))
Q = Quant((0.02,), (-4,))
xq = random_data(rng, (2, 5), "int8")
CASES.append(Case("max_quant", "reduce_max", dict(axes=[1], keepdims=0), [Arg(xq, quant=Q)], [xq.max(1)],
                  result_quant=Q))

# arg reductions: small integers make ties, so select_last_index matters
for i, (shape, axis, keep, last, dt) in enumerate([
        ((3, 4), 1, 1, 0, "float32"), ((3, 4), 0, 0, 1, "float32"), ((2, 3, 4), 1, 1, 1, "int8"),
        ((2, 3, 4), 2, 0, 0, "uint8"), ((5,), 0, 1, 0, "int64"), ((2, 6, 1), 1, 0, 1, "float32")]):
    xa = rng.integers(0, 3, shape).astype(dt)
    for kind, onnx_kind in (("argmax", "ArgMax"), ("argmin", "ArgMin")):
        attrs = dict(axis=axis, keepdims=keep, select_last_index=last)
        CASES.append(Case(f"{kind}{i}", kind, attrs, [xa], onnx_ref(onnx_kind, [xa], attrs)))
xaq = random_data(rng, (3, 4), "uint8")
CASES.append(Case("argmax_quant", "argmax", dict(axis=1, keepdims=0), [Arg(xaq, quant=Quant((0.1,), (128,)))],
                  [np.argmax(xaq, 1)]))


results, test_reduce, test_reduce_sanitized = kernel_tests(CASES)


def test_integer_sum_is_unsupported():
    x, y = Value("x", TensorType((2, 3), "i32")), Value("y", TensorType((2, 1), "i32"))
    with pytest.raises(Unsupported):
        select(Op("reduce_sum", [x], [y], fill_defaults("reduce_sum", dict(axes=[1])), "r"))


def test_kept_innermost_axis_folds_a_run():
    """Reducing axis 0 of [8, 32]: the innermost loop runs over 32 outputs (it vectorizes)."""
    x, y = Value("x", TensorType((8, 32), "f32")), Value("y", TensorType((1, 32), "f32"))
    k = select(Op("reduce_sum", [x], [y], fill_defaults("reduce_sum", dict(axes=[0])), "r"))
    assert k.vars["inner_kept"] and k.vars["inner"] == 32 and k.vars["loops"] == [8]
