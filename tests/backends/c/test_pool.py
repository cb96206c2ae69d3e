"""Float32 pooling C kernels: average_pool and max_pool on NCHW and NHWC data, spatial rank 1-3,
strides, asymmetric pads, ceil_mode, count_include_pad, dilations, max_pool's int64 indices (both
storage orders, ONNX's NCHW flat index whatever the layout), max_pool on plain integers; global
average and max pools."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.kernels import Unsupported
from edgecc.backends.c.kernels.pool import pool
from edgecc.backends.c.runner import have_cc
from edgecc.ir import Op, TensorType, Value
from edgecc.ir.ops import fill_defaults

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Case, kernel_tests, onnx_ref  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(9)


def to_last(a):
    return np.moveaxis(a, 1, -1).copy()


def pool_case(name, kind, x_shape, kernel, strides=None, pads=None, dilations=None, ceil_mode=0,
              count_include_pad=0, channels_last=0, indices=False, storage_order=0, dtype="float32"):
    nd = len(x_shape) - 2
    x = rng.standard_normal(x_shape).astype(np.float32)
    if dtype != "float32":
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, x_shape, endpoint=True).astype(dtype)
    attrs = dict(kernel_shape=kernel, strides=strides or [1] * nd, pads=pads or [0] * 2 * nd, ceil_mode=ceil_mode)
    if kind == "max_pool":
        attrs.update(dilations=dilations or [1] * nd, storage_order=storage_order)
        onnx_kind = "MaxPool"
    else:
        attrs.update(count_include_pad=count_include_pad)
        onnx_kind = "AveragePool"
    expected = onnx_ref(onnx_kind, [x], attrs, n_outputs=2 if indices else 1)
    if channels_last:
        x = to_last(x)
        expected = [to_last(e) for e in expected]
    return Case(name, kind, dict(attrs, channels_last=channels_last), [x], expected)


CASES = []
for cl in (0, 1):
    lay = "nhwc" if cl else "nchw"
    CASES += [
        pool_case(f"max2x2_{lay}", "max_pool", (1, 16, 8, 8), [2, 2], [2, 2], channels_last=cl),
        pool_case(f"max3x3_pad_{lay}", "max_pool", (2, 12, 9, 7), [3, 3], [2, 2], [1, 1, 1, 1], channels_last=cl),
        pool_case(f"max_dilated_ceil_{lay}", "max_pool", (1, 10, 9, 7), [3, 2], [2, 2], [1, 0, 0, 1],
                  dilations=[2, 1], ceil_mode=1, channels_last=cl),
        pool_case(f"max_indices_{lay}", "max_pool", (2, 3, 6, 5), [2, 2], [2, 1], [0, 1, 1, 0], channels_last=cl,
                  indices=True),
        pool_case(f"max_indices_colmajor_{lay}", "max_pool", (1, 9, 6, 5), [3, 2], [1, 2], [1, 1, 1, 0],
                  channels_last=cl, indices=True, storage_order=1),
        pool_case(f"max1d_{lay}", "max_pool", (1, 2, 11), [3], [2], [1, 1], ceil_mode=1, channels_last=cl,
                  indices=True),
        pool_case(f"max3d_{lay}", "max_pool", (1, 2, 4, 5, 6), [2, 2, 3], [1, 2, 2], [0, 1, 1, 1, 0, 1],
                  channels_last=cl),
        pool_case(f"avg2x2_{lay}", "average_pool", (1, 16, 8, 8), [2, 2], [2, 2], channels_last=cl),
        pool_case(f"avg_pad_{lay}", "average_pool", (2, 12, 9, 7), [3, 3], [2, 2], [1, 1, 1, 1], channels_last=cl),
        pool_case(f"avg_pad_counted_{lay}", "average_pool", (2, 12, 9, 7), [3, 3], [2, 2], [1, 1, 1, 1],
                  count_include_pad=1, channels_last=cl),
        pool_case(f"avg_ceil_counted_{lay}", "average_pool", (1, 9, 10, 7), [3, 2], [2, 2], [1, 0, 2, 1],
                  ceil_mode=1, count_include_pad=1, channels_last=cl),
        pool_case(f"avg_ceil_{lay}", "average_pool", (1, 3, 9, 7), [3, 2], [2, 2], [1, 0, 0, 1], ceil_mode=1,
                  channels_last=cl),
        pool_case(f"avg1d_{lay}", "average_pool", (1, 2, 11), [4], [3], [1, 2], ceil_mode=1, count_include_pad=1,
                  channels_last=cl),
        pool_case(f"avg3d_{lay}", "average_pool", (1, 2, 4, 5, 6), [2, 2, 3], [1, 2, 2], [0, 1, 1, 1, 0, 1],
                  channels_last=cl),
        pool_case(f"avg_whole_{lay}", "average_pool", (1, 64, 25, 5), [25, 5], channels_last=cl),  # DS-CNN's head
        pool_case(f"max_uint8_{lay}", "max_pool", (1, 3, 6, 6), [3, 3], [2, 2], [1, 1, 1, 1], channels_last=cl,
                  dtype="uint8"),
        pool_case(f"max_int32_{lay}", "max_pool", (1, 2, 5, 6), [2, 2], [1, 2], [0, 1, 1, 0], channels_last=cl,
                  dtype="int32", indices=True),
    ]
for kind, reduce in [("global_average_pool", np.mean), ("global_max_pool", np.max)]:
    for i, (x_shape, cl) in enumerate([((2, 3, 5, 7), 0), ((2, 12, 5, 7), 1), ((1, 20, 3), 0),
                                        ((1, 3, 2, 3, 4), 1), ((1, 4, 4, 4), 0), ((1, 256, 3, 3), 1)]):
        x = rng.standard_normal(x_shape).astype(np.float32)
        y = reduce(x.astype(np.float64), axis=tuple(range(2, len(x_shape))), keepdims=True).astype(np.float32)
        if cl:
            x, y = to_last(x), to_last(y)
        CASES.append(Case(f"{kind}{i}", kind, dict(channels_last=cl), [x], [y]))

results, test_pool, test_pool_sanitized = kernel_tests(CASES)


def test_integer_average_pool_is_unsupported():
    x, y = Value("x", TensorType((1, 1, 4, 4), "i8")), Value("y", TensorType((1, 1, 2, 2), "i8"))
    attrs = fill_defaults("average_pool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0] * 4))
    with pytest.raises(Unsupported, match="i8"):
        pool(Op("average_pool", [x], [y], attrs, "p"))


def test_indices_must_be_int64():
    x = Value("x", TensorType((1, 1, 4, 4), "f32"))
    y, i = Value("y", TensorType((1, 1, 2, 2), "f32")), Value("i", TensorType((1, 1, 2, 2), "i32"))
    attrs = fill_defaults("max_pool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0] * 4, dilations=[1, 1]))
    with pytest.raises(Unsupported, match="int64"):
        pool(Op("max_pool", [x], [y, i], attrs, "p"))
