"""Corpus kinds that break what nodes and the model say about themselves: attributes out of
their op's domain, opset and IR versions out of range, and hostile names."""
from __future__ import annotations

import onnx
from onnx import helper

from corpus_edit import Variant, copy, first_of, pick, rename_value, set_attr, weight

CONV_ATTRIBUTES = [("kernel_zero", "kernel_shape", [0, 0]), ("kernel_negative", "kernel_shape", [-3, 3]),
                   ("kernel_rank3", "kernel_shape", [3, 3, 3]), ("kernel_not_the_weights", "kernel_shape", [5, 5]),
                   ("strides_zero", "strides", [0, 1]), ("strides_negative", "strides", [-1, -1]),
                   ("pads_negative", "pads", [-1, 0, 0, 0]), ("pads_length3", "pads", [1, 1, 1]),
                   ("dilations_zero", "dilations", [0, 0]), ("group_zero", "group", 0), ("group_negative", "group", -2),
                   ("group_not_dividing", "group", 7), ("auto_pad_bogus", "auto_pad", "BOGUS"),
                   ("auto_pad_and_pads", "auto_pad", "SAME_UPPER")]
POOL_ATTRIBUTES = [("kernel_zero", "kernel_shape", [0, 0]), ("kernel_huge", "kernel_shape", [1000, 1000]),
                   ("strides_zero", "strides", [0, 0]), ("pads_negative", "pads", [0, -2, 0, 0]),
                   ("ceil_mode_bogus", "ceil_mode", 5)]
AXIS_ATTRIBUTES = {"Softmax": [("axis_7", "axis", 7), ("axis_minus9", "axis", -9)],
                   "LayerNormalization": [("axis_4", "axis", 4)],
                   "Transpose": [("perm_out_of_range", "perm", [0, 5, 1, 2]), ("perm_repeated", "perm", [0, 0, 1, 2]),
                                 ("perm_short", "perm", [1, 0])],
                   "Concat": [("axis_3", "axis", 3)], "Gather": [("axis_2", "axis", 2)],
                   "Reshape": [("allowzero_7", "allowzero", 7)]}


def bad_attribute(model, rng):
    for op_type, table in [("Conv", CONV_ATTRIBUTES), ("AveragePool", POOL_ATTRIBUTES)] + list(AXIS_ATTRIBUTES.items()):
        if first_of(model, op_type) is None:
            continue
        for variant, name, value in table:
            m = copy(model)
            set_attr(first_of(m, op_type), name, value)
            yield Variant(f"{op_type.lower()}_{variant}", m)


def opset_ir_version(model, rng):
    for variant, version in (("opset_9", 9), ("opset_29", 29), ("opset_0", 0), ("opset_negative", -1),
                             ("opset_huge", 2 ** 62)):
        m = copy(model)
        next(o for o in m.opset_import if o.domain in ("", "ai.onnx")).version = version
        yield Variant(variant, m)
    m = copy(model)
    keep = [o for o in m.opset_import if o.domain not in ("", "ai.onnx")]
    del m.opset_import[:]
    m.opset_import.extend(keep or [helper.make_opsetid("com.example", 1)])
    yield Variant("no_default_opset", m)
    m = copy(model)
    m.opset_import.append(helper.make_opsetid("", 13))
    yield Variant("default_opset_twice", m)
    m = copy(model)  # "ai.onnx" is the default domain's other name
    next(o for o in m.opset_import if o.domain == "").domain = "ai.onnx"
    yield Variant("default_domain_spelled_ai_onnx", m, must_refuse=False)
    for variant, version in (("ir_0", 0), ("ir_2", 2), ("ir_3_too_old_for_opset", 3), ("ir_99", 99),
                             ("ir_negative", -4)):
        m = copy(model)
        m.ir_version = version
        yield Variant(variant, m)


# Names a C file, a template, a comment or a printf may choke on; edgecc must compile these or
# refuse them with one line, never emit C that does not build.
HOSTILE_NAMES = {
    "c_keywords": ["int", "return", "static", "for"],
    "generated_api": ["model_invoke", "model_input", "main", "MODEL_RAM_BYTES"],
    "quotes": ['a"b', "c'd", "e\\f", '"; system("rm -rf /"); "'],
    "comment_breakers": ["*/ int x; /*", "ends_in_backslash\\", "//", "/* open"],
    "newlines": ["line1\nline2", "cr\rlf", "\n#define X 1\n", "tab\there"],
    "templates": ["{{ 7*7 }}", "{% raw %}", "${HOME}", "#{x}"],
    "printf": ["%s%n", "%x%x%x", "%%", "%d"],
    "unicode": ["Γειά", "名前", "emoji_\U0001F600", "\u202eright_to_left"],
    "sanitizer_collisions": ["a-b", "a.b", "a_b", "a b"],
    "leading_digits": ["0abc", "123", "1e5", "0x10"],
    "only_symbols": ["!!!", "___", "-", "."],
}


def rename_some_values(m: onnx.ModelProto, names: list) -> None:
    """The graph input, the first layer's output, the largest weight and the graph output take these names."""
    targets = [m.graph.input[0].name, pick(m, "first").output[0], weight(m).name, m.graph.output[0].name]
    for old, new in zip(targets, names):
        rename_value(m, old, new)


def hostile_name(model, rng):
    for variant, names in HOSTILE_NAMES.items():
        m = copy(model)
        rename_some_values(m, names)
        yield Variant(f"values_{variant}", m, must_refuse=False)
        m = copy(model)
        for i, node in enumerate(m.graph.node):
            node.name = names[i % len(names)]
        yield Variant(f"nodes_{variant}", m, must_refuse=False)
    for variant, new in (("node", "n" * 10_000), ("value", "v" * 10_000)):
        m = copy(model)
        if variant == "node":
            pick(m, "middle").name = new
        else:
            rename_value(m, m.graph.input[0].name, new)
        yield Variant(f"10kB_{variant}_name", m, must_refuse=False)
    m = copy(model)
    for node in m.graph.node:
        node.name = ""
    yield Variant("nodes_unnamed", m, must_refuse=False)
    m = copy(model)
    m.graph.name = "*/ graph \\"
    yield Variant("graph_name", m, must_refuse=False)
    yield from invalid_utf8(model)


PLACEHOLDER = "@UTF8@"
INVALID_UTF8 = b"\xff\xc3\x28\xa0\xa1\x80"  # as long as the placeholder: length prefixes stay right


def invalid_utf8(model):
    """Names with bytes that are not UTF-8 (protobuf cannot set them: the serialized placeholder is
    replaced). Every name edgecc reads must be refused; a doc string may also be ignored."""
    for variant, refuse in (("node_name", True), ("value_name", True), ("op_type", True), ("graph_name", True),
                            ("opset_domain", True), ("doc_string", False)):
        m = copy(model)
        if variant == "node_name":
            pick(m, "middle").name = PLACEHOLDER
        elif variant == "value_name":
            rename_value(m, m.graph.input[0].name, PLACEHOLDER)
        elif variant == "op_type":
            pick(m, "middle").op_type = PLACEHOLDER
        elif variant == "graph_name":
            m.graph.name = PLACEHOLDER
        elif variant == "opset_domain":
            m.opset_import.append(helper.make_opsetid(PLACEHOLDER, 1))
        else:
            m.doc_string = PLACEHOLDER
        data = m.SerializeToString().replace(PLACEHOLDER.encode(), INVALID_UTF8)
        yield Variant(f"invalid_utf8_{variant}", data, must_refuse=refuse)


KINDS = {"bad_attribute": bad_attribute, "opset_ir_version": opset_ir_version, "hostile_name": hostile_name}
