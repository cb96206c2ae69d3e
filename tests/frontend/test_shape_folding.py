"""Exporter shape scaffolding folds away once the symbolic batch is pinned; dynamic shapes that
cannot be pinned are user errors."""
import os
import sys

import numpy as np
import pytest
from onnx import helper

from edgecc.compiler.frontend import load_onnx
from edgecc.ir import EdgeccError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builders import I64, assert_matches_ort, const, kinds, model, save, vi  # noqa: E402

SHAPE_OPS = {"shape", "size", "gather", "concat", "constant_of_shape", "range", "cast", "equal", "where", "mod"}


def flatten_by_shape_model():
    """torch-style flatten: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["batch"], axis=0),
             helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
             helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    inits = [const("zero", np.array(0, np.int64)), const("axes0", np.array([0], np.int64)),
             const("minus1", np.array([-1], np.int64))]
    return model(nodes, [vi("x", ["N", 3, 4, 4])], [vi("y", ["N", 48])], inits, opset=13)


def test_shape_gather_concat_reshape_folds(tmp_path):
    path = save(flatten_by_shape_model(), tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["reshape"]
    assert g.inputs[0].type.shape == (1, 3, 4, 4)
    assert g.ops[0].attrs["shape"] == [1, 48]
    assert_matches_ort(path, g, [np.ones((1, 3, 4, 4), np.float32)])


def test_input_shapes_choose_the_batch(tmp_path):
    g = load_onnx(save(flatten_by_shape_model(), tmp_path), {"x": [2, 3, 4, 4]})
    assert g.ops[0].attrs["shape"] == [2, 48] and g.outputs[0].type.shape == (2, 48)


def test_range_where_constant_of_shape_fold(tmp_path):
    """Scaffolding of many kinds: Size, Cast, Mod, Range, ConstantOfShape, Equal, Where, Expand."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Size", ["x"], ["n"]),
             helper.make_node("Cast", ["n"], ["nf"], to=1),
             helper.make_node("Cast", ["nf"], ["ni"], to=7),
             helper.make_node("Mod", ["ni", "seven"], ["rem"]),
             helper.make_node("Range", ["zero", "rem", "one"], ["idx"]),
             helper.make_node("Gather", ["x", "idx"], ["picked"], axis=2),
             helper.make_node("Shape", ["s"], ["rank"]),
             helper.make_node("ConstantOfShape", ["rank"], ["ones"], value=helper.make_tensor("v", I64, [1], [1])),
             helper.make_node("Equal", ["s", "minus1"], ["is_dyn"]),
             helper.make_node("Where", ["is_dyn", "ones", "s"], ["bshape"]),
             helper.make_node("Expand", ["bias", "bshape"], ["b"]),
             helper.make_node("Add", ["x", "b"], ["y"])]
    inits = [const("seven", np.array(7, np.int64)), const("zero", np.array(0, np.int64)),
             const("one", np.array(1, np.int64)), const("minus1", np.array(-1, np.int64)),
             const("bias", np.arange(5, dtype=np.float32))]
    m = model(nodes, [vi("x", ["batch", 2, 5])], [vi("y", ["batch", 2, 5]), vi("picked", ["batch", 2, None])],
              inits, opset=13)
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert not SHAPE_OPS & set(kinds(g)) - {"gather"}
    assert kinds(g).count("gather") == 1 and g.ops[kinds(g).index("gather")].operands[1].is_const
    assert_matches_ort(path, g, [np.arange(10, dtype=np.float32).reshape(1, 2, 5)])


def test_dynamic_inner_dimension_is_a_user_error(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1, "seq"])], [vi("y", [1, "seq"])])
    with pytest.raises(EdgeccError, match="dynamic dimension 'seq'.*--input-shape"):
        load_onnx(save(m, tmp_path))
    g = load_onnx(save(m, tmp_path), {"x": [1, 7]})
    assert g.outputs[0].type.shape == (1, 7)


def test_input_shapes_must_name_an_input(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1, 2])], [vi("y", [1, 2])])
    with pytest.raises(EdgeccError, match="'z', which is not an input"):
        load_onnx(save(m, tmp_path), {"z": [1]})


def test_shape_that_stays_dynamic_is_a_user_error(tmp_path):
    """A Reshape whose target comes from a graph input cannot get a static shape."""
    m = model([helper.make_node("Reshape", ["x", "t"], ["y"])], [vi("x", [1, 6]), vi("t", [2], I64)],
              [vi("y", None)])
    with pytest.raises(EdgeccError, match="no static shape") as e:
        load_onnx(save(m, tmp_path))
    assert e.value.op == "Reshape"
