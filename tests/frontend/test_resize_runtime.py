"""Resize whose scales or roi are computed at run time: with an output shape the model declares,
they lift to operands of the IR's resize; numbers checked against onnxruntime."""
import os
import sys

import numpy as np
import pytest
from onnx import helper

from edgecc.compiler.frontend import load_onnx
from edgecc.ir import EdgeccError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builders import I64, assert_matches_ort, const, kinds, model, save, vi  # noqa: E402

rng = np.random.default_rng(7)
X = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)


def scales_model(out_shape, attrs, axes=None, antialias=0):
    n = len(axes) if axes else 4
    extra = {"axes": axes} if axes else {}
    if antialias:
        extra["antialias"] = 1
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs, **extra)
    return model([node], [vi("x", list(X.shape)), vi("scales", [n])], [vi("y", out_shape)], opset=19)


@pytest.mark.parametrize("attrs", [dict(mode="nearest"), dict(mode="linear"),
                                   dict(mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5),
                                   dict(mode="linear", coordinate_transformation_mode="half_pixel_symmetric"),
                                   dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                        nearest_mode="ceil")])
def test_runtime_scales_become_an_operand(tmp_path, attrs):
    # 1.7 and 0.6 give 6 and 3 outputs: the coordinates follow the scales, not the size ratios
    path = save(scales_model([1, 2, 6, 3], attrs), tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["resize"]
    op = g.ops[0]
    assert op.operands[1] is None and op.operands[2] is g.inputs[1] and op.attrs["axes"] == [0, 1, 2, 3]
    assert_matches_ort(path, g, [X, np.array([1, 1, 1.7, 0.6], np.float32)], rtol=1e-4, atol=1e-5)


def test_runtime_scales_of_listed_axes(tmp_path):
    path = save(scales_model([1, 2, 6, 10], dict(mode="linear"), axes=[3, 2]), tmp_path)
    g = load_onnx(path)
    assert g.ops[0].attrs["axes"] == [3, 2] and g.ops[0].operands[2].type.shape == (2,)
    assert_matches_ort(path, g, [X, np.array([2.0, 1.6], np.float32)], rtol=1e-4, atol=1e-5)


def test_align_corners_reads_no_scales(tmp_path):
    """align_corners maps the output length onto the input's: the scale is not needed at run time."""
    path = save(scales_model([1, 2, 8, 10], dict(mode="linear", coordinate_transformation_mode="align_corners")),
                tmp_path)
    g = load_onnx(path)
    assert g.ops[0].inputs() == [g.inputs[0]] and g.ops[0].attrs["scales"] == [1.0, 1.0, 2.0, 2.0]
    assert_matches_ort(path, g, [X, np.array([1, 1, 2, 2], np.float32)], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axes", [None, [3, 2]])
def test_runtime_roi_of_crop_and_resize(tmp_path, axes):
    n = len(axes) if axes else 4
    node = helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"], mode="linear", extrapolation_value=-3.0,
                            coordinate_transformation_mode="tf_crop_and_resize", **({"axes": axes} if axes else {}))
    sizes = [7, 3] if axes else [1, 2, 3, 7]
    path = save(model([node], [vi("x", list(X.shape)), vi("roi", [2 * n])], [vi("y", [1, 2, 3, 7])],
                      [const("sizes", np.array(sizes, np.int64))], opset=19), tmp_path)
    g = load_onnx(path)
    op = g.ops[0]
    assert op.operands[1] is g.inputs[1] and len(op.operands) == 2
    roi = [-0.2, 0.1, 1.1, 0.7] if axes else [0, 0, 0.1, -0.2, 1, 1, 0.7, 1.1]
    assert_matches_ort(path, g, [X, np.array(roi, np.float32)], rtol=1e-4, atol=1e-5)


def test_declared_shape_flows_to_later_nodes(tmp_path):
    """Only the resize's own result is declared (a value info); the Relu after it gets its shape from there."""
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
             helper.make_node("Relu", ["r"], ["y"])]
    m = model(nodes, [vi("x", list(X.shape)), vi("scales", [4])], [vi("y", None)], opset=19)
    m.graph.value_info.append(vi("r", [1, 2, 8, 10]))
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["resize", "relu"] and g.outputs[0].type.shape == (1, 2, 8, 10)
    assert_matches_ort(path, g, [X, np.array([1, 1, 2, 2], np.float32)])


def test_antialias_with_runtime_scales_is_a_clear_error(tmp_path):
    path = save(scales_model([1, 2, 2, 3], dict(mode="linear"), antialias=1), tmp_path)
    with pytest.raises(EdgeccError, match="antialiased Resize needs constant scales"):
        load_onnx(path)


def test_runtime_scales_without_a_declared_shape_are_a_clear_error(tmp_path):
    path = save(scales_model(None, dict(mode="linear")), tmp_path)
    with pytest.raises(EdgeccError, match="result 'y' has no static shape"):
        load_onnx(path)


def test_runtime_sizes_stay_an_error(tmp_path):
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest")
    path = save(model([node], [vi("x", list(X.shape)), vi("sizes", [4], I64)], [vi("y", [1, 2, 8, 10])], opset=19),
                tmp_path)
    with pytest.raises(EdgeccError, match="sizes"):
        load_onnx(path)
