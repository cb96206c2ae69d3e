"""Corpus kinds that break the graph's structure: cycles, dangling inputs, deleted nodes, empty
graphs, outputs nothing produces, values produced twice, unknown ops and domains, malformed nodes."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from corpus_edit import Variant, consumer_of, copy, layers, pick, set_attr


def cycle(model, rng):
    m = copy(model)
    node = pick(m, "middle")
    node.input[0] = node.output[0]
    yield Variant("self_loop", m)
    m = copy(model)
    node = pick(m, "middle")
    node.input[0] = consumer_of(m, node.output[0]).output[0]
    yield Variant("two_nodes", m)
    m = copy(model)
    pick(m, "first").input[0] = pick(m, "last").output[0]
    yield Variant("whole_graph", m)


def dangling_input(model, rng):
    m = copy(model)
    pick(m, "first").input[0] = "nothing_makes_this"
    yield Variant("first_layer", m)
    m = copy(model)
    node = pick(m, "middle")
    node.input[len(node.input) - 1] = "nor_this"
    yield Variant("middle_layer_last_input", m)
    m = copy(model)
    pick(m, "last").input[0] = ""  # a required input left empty
    yield Variant("required_input_empty", m)


def deleted_node(model, rng):
    for where in ("first", "middle", "last"):
        m = copy(model)
        m.graph.node.remove(pick(m, where))
        yield Variant(where, m)
    m = copy(model)
    keep = [n for i, n in enumerate(m.graph.node) if i not in set(layers(m))]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    yield Variant("every_layer", m)


def empty_graph(model, rng):
    m = copy(model)
    del m.graph.node[:]
    yield Variant("no_nodes", m)
    m = copy(model)
    for field in (m.graph.node, m.graph.input, m.graph.output, m.graph.initializer, m.graph.value_info):
        del field[:]
    yield Variant("nothing_at_all", m)
    m = copy(model)
    del m.graph.output[:]
    yield Variant("no_outputs", m)
    m = copy(model)
    del m.graph.input[:]
    yield Variant("no_inputs", m)
    m = copy(model)  # the input is the output: valid ONNX, a model that computes nothing
    del m.graph.node[:]
    m.graph.output[0].CopyFrom(m.graph.input[0])
    yield Variant("input_is_output", m, must_refuse=False)


def unproduced_output(model, rng):
    m = copy(model)
    m.graph.output[0].name = "ghost"
    yield Variant("renamed", m)
    m = copy(model)
    m.graph.output.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, [1]))
    yield Variant("extra", m)
    m = copy(model)  # an initializer as an output: valid ONNX, a constant output
    w = m.graph.initializer[0]
    m.graph.output.append(helper.make_tensor_value_info(w.name, w.data_type, list(w.dims)))
    yield Variant("initializer_as_output", m, must_refuse=False)
    m = copy(model)
    m.graph.output.append(m.graph.output[0])
    yield Variant("listed_twice", m, must_refuse=False)


def produced_twice(model, rng):
    m = copy(model)
    m.graph.node.append(copy_node(pick(m, "middle")))
    yield Variant("duplicate_node", m)
    for what, name in (("graph_input", model.graph.input[0].name), ("initializer", model.graph.initializer[0].name)):
        m = copy(model)
        old = pick(m, "middle").output[0]
        for n in m.graph.node:  # the layer and its readers now use the other value's name
            for field in (n.input, n.output):
                for i, x in enumerate(field):
                    if x == old:
                        field[i] = name
        yield Variant(f"over_{what}", m)
    m = copy(model)
    node = pick(m, "middle")
    node.output.append(node.output[0])
    yield Variant("same_node_twice", m)


def copy_node(node: onnx.NodeProto) -> onnx.NodeProto:
    out = onnx.NodeProto()
    out.CopyFrom(node)
    out.name += "_again"
    return out


def unknown_op(model, rng):
    for variant, op_type in (("made_up", "NoSuchOp"), ("empty", ""), ("future_gelu", "Gelu")):
        m = copy(model)
        pick(m, "middle").op_type = op_type
        yield Variant(variant, m)
    m = copy(model)
    node = pick(m, "middle")
    node.op_type = node.op_type.lower()
    yield Variant("lowercase", m)
    m = copy(model)  # a real op whose result's shape depends on the data
    node = pick(m, "last")
    node.op_type = "NonZero"
    del node.attribute[:]
    del node.input[1:]
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.INT64
    yield Variant("data_dependent_nonzero", m)


def unknown_domain(model, rng):
    for variant, domain, declare in (("declared", "com.example", True), ("undeclared", "com.example", False),
                                     ("ml_domain", "ai.onnx.ml", True), ("microsoft", "com.microsoft", True),
                                     ("preview_training", "ai.onnx.preview.training", True)):
        m = copy(model)
        pick(m, "middle").domain = domain
        if declare and domain not in {o.domain for o in m.opset_import}:
            m.opset_import.append(helper.make_opsetid(domain, 1))
        yield Variant(variant, m)


def malformed_node(model, rng):
    m = copy(model)
    del pick(m, "middle").output[:]
    yield Variant("no_outputs", m)
    m = copy(model)
    node = pick(m, "first")
    node.input.extend([node.input[0]] * 5)
    yield Variant("extra_inputs", m)
    m = copy(model)
    node = pick(m, "middle")
    del node.input[min(1, len(node.input) - 1):]  # only the first input left, or none
    yield Variant("missing_inputs", m)
    m = copy(model)
    set_attr(pick(m, "middle"), "fancy", 1)
    yield Variant("unknown_attribute", m)
    m = copy(model)
    set_attr(pick(m, "last"), "axis", "minus one")  # a string where an int belongs
    yield Variant("attribute_of_wrong_type", m)
    yield Variant("if_subgraph", if_subgraph(model))
    yield Variant("constant_without_value",
                  with_extra_output(model, helper.make_node("Constant", [], ["extra_out"], name="empty_constant"), 1))
    m = copy(model)
    m.graph.input.append(m.graph.input[0])
    yield Variant("input_listed_twice", m)
    m = copy(model)  # an initializer named like the input: the input becomes a constant
    x = m.graph.input[0]
    m.graph.initializer.append(numpy_helper.from_array(np.zeros([1], np.float32), x.name))
    yield Variant("initializer_shadows_input", m, must_refuse=False)
    m = copy(model)
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.ones(2, np.float32), "sparse_w"),
                                       numpy_helper.from_array(np.array([0, 3], np.int64), "sparse_i"), [4])
    m.graph.sparse_initializer.append(sparse)
    m.graph.node.append(helper.make_node("Identity", ["sparse_w"], ["extra_out"], name="reads_sparse"))
    m.graph.output.append(helper.make_tensor_value_info("extra_out", TensorProto.FLOAT, [4]))
    yield Variant("sparse_initializer", m)
    yield from local_functions(model)


def with_extra_output(model, node: onnx.NodeProto, rank: int, elem_type=TensorProto.FLOAT) -> onnx.ModelProto:
    """The model with `node` added, its first output an extra graph output of this rank (dims unknown:
    an output without a shape is refused by onnx's checker before it tests anything)."""
    m = copy(model)
    m.graph.node.append(node)
    m.graph.output.append(symbolic(node.output[0], rank, elem_type))
    return m


def symbolic(name: str, rank: int, elem_type=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, [f"{name}_d{i}" for i in range(rank)])


def if_subgraph(model) -> onnx.ModelProto:
    """The model with an extra output from an If on a constant condition, whose branches (subgraphs)
    read the graph input."""
    m = copy(model)
    x, x_type = m.graph.input[0].name, m.graph.input[0].type.tensor_type
    rank = len(x_type.shape.dim)

    def branch(name):
        return helper.make_graph([helper.make_node("Identity", [x], [f"{name}_y"])], name, [],
                                 [symbolic(f"{name}_y", rank, x_type.elem_type)])
    m.graph.initializer.append(numpy_helper.from_array(np.array(True), "if_cond"))
    node = helper.make_node("If", ["if_cond"], ["extra_out"], name="branchy", then_branch=branch("then"),
                            else_branch=branch("else"))
    return with_extra_output(m, node, rank, x_type.elem_type)


def local_functions(model):
    """Model-local functions: one calling itself (inlining it must not recurse forever), one with
    an op nothing knows inside."""
    for variant, body_op in (("recursive_function", "Loopy"), ("function_with_unknown_op", "NoSuchOp")):
        m = copy(model)
        fn = helper.make_function("local", "Loopy", ["a"], ["b"], [helper.make_node(body_op, ["a"], ["b"],
                                  domain="local" if body_op == "Loopy" else "")],
                                  [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
        m.functions.append(fn)
        m.opset_import.append(helper.make_opsetid("local", 1))
        node = pick(m, "last")
        node.op_type, node.domain = "Loopy", "local"
        del node.attribute[:]
        del node.input[1:]
        yield Variant(variant, m)


KINDS = {"cycle": cycle, "dangling_input": dangling_input, "deleted_node": deleted_node, "empty_graph": empty_graph,
         "unproduced_output": unproduced_output, "produced_twice": produced_twice, "unknown_op": unknown_op,
         "unknown_domain": unknown_domain, "malformed_node": malformed_node}
