"""Verifier rules that are not about shapes: the channels_last attribute and the layout tags agree."""
from __future__ import annotations

import pytest

from edgecc.ir import Graph, Op, TensorType, Value, verify
from edgecc.ir.ops import fill_defaults
from edgecc.ir.verifier import VerifyError


def pool_graph(channels_last: int, x_layout, y_layout) -> Graph:
    x = Value("x", TensorType((1, 4, 4, 8), "f32", layout=x_layout))
    y = Value("y", TensorType((1, 2, 2, 8), "f32", layout=y_layout))
    attrs = fill_defaults("max_pool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0],
                                           dilations=[1, 1], channels_last=channels_last))
    return Graph("g", [x], [y], [Op("max_pool", [x], [y], attrs, "pool")], [])


def test_channels_last_with_channels_last_tags_verifies():
    verify(pool_graph(1, "nhwc", "nhwc"))


@pytest.mark.parametrize("x_layout, y_layout", [(None, "nhwc"), ("nhwc", None), ("nchw", "nhwc")])
def test_channels_last_needs_the_tags(x_layout, y_layout):
    # the interpreter reads the tags and the kernels the attribute: they must not disagree
    with pytest.raises(VerifyError, match=r"op 'pool' \(max_pool\): channels_last = 1 but %[xy] has layout"):
        verify(pool_graph(1, x_layout, y_layout))


def test_channels_first_refuses_a_channels_last_tag():
    x = Value("x", TensorType((1, 8, 4, 4), "f32", layout="nhwc"))
    y = Value("y", TensorType((1, 8, 2, 2), "f32"))
    attrs = fill_defaults("max_pool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0], dilations=[1, 1]))
    with pytest.raises(VerifyError, match="channels_last = 0 but %x has layout nhwc"):
        verify(Graph("g", [x], [y], [Op("max_pool", [x], [y], attrs, "pool")], []))
