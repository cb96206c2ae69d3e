"""The textual IR: print -> parse round trips on hand-built graphs, a golden file, and errors."""
import difflib
import logging
import os
import time
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from edgecc.ir import DTYPES, EdgeccError, Graph, Op, Quant, TensorType, Value, parse, print_graph, verify
from edgecc.ir.parser import IRParseError
from lark import Lark

GOLDEN = Path(__file__).parent / "golden"


def ty(shape, dtype="f32", quant=None, layout=None):
    return TensorType(tuple(shape), dtype, quant, layout)


def per_tensor(scale, zero_point):
    return Quant((scale,), (zero_point,))


def per_axis(scales, zero_points, axis=0):
    return Quant(tuple(scales), tuple(zero_points), axis)


def op(kind, operands, results, name="", regions=(), **attrs):
    return Op(kind, list(operands), list(results), attrs, name, list(regions))


# ---- structural equality -------------------------------------------------------------------
def attr_key(value):
    """An attribute value with its Python types made visible (1 vs 1.0) and nan comparable."""
    if isinstance(value, list):
        return [attr_key(v) for v in value]
    return type(value).__name__, repr(value)


def assert_same_graph(a: Graph, b: Graph):
    assert a.name == b.name
    assert [(v.name, v.type) for v in a.inputs] == [(v.name, v.type) for v in b.inputs]
    assert [v.name for v in a.outputs] == [v.name for v in b.outputs]
    assert len(a.constants) == len(b.constants)
    for ca, cb in zip(a.constants, b.constants):
        assert (ca.name, ca.type) == (cb.name, cb.type)
        assert (ca.data.dtype, ca.data.shape) == (cb.data.dtype, cb.data.shape)
        assert ca.data.tobytes() == cb.data.tobytes(), f"%{ca.name} data differs"
    assert len(a.ops) == len(b.ops)
    for oa, ob in zip(a.ops, b.ops):
        assert (oa.kind, oa.name) == (ob.kind, ob.name)
        assert [v and v.name for v in oa.operands] == [v and v.name for v in ob.operands]
        assert [(r.name, r.type) for r in oa.results] == [(r.name, r.type) for r in ob.results]
        assert {k: attr_key(v) for k, v in oa.attrs.items()} == {k: attr_key(v) for k, v in ob.attrs.items()}
        assert len(oa.regions) == len(ob.regions)
        for ga, gb in zip(oa.regions, ob.regions):
            assert_same_graph(ga, gb)


def round_trip(g: Graph) -> str:
    verify(g)
    text = print_graph(g)
    back = parse(text)
    assert_same_graph(g, back)
    assert print_graph(back) == text
    return text


# ---- graphs covering every feature ---------------------------------------------------------
def conv_model() -> Graph:
    """Per-tensor and per-axis quant, layouts, multi-result split, a partition, a golden-sized model."""
    act = per_tensor(0.5, -128)
    x = Value("input_1", ty([1, 3, 6, 6], "i8", act, "nchw"))
    g = Graph("main", [x], [])
    w = g.add_constant("conv_1/w", np.arange(-54, 54, dtype=np.int8).reshape(4, 3, 3, 3),
                       ty([4, 3, 3, 3], "i8", per_axis([0.01, 0.02, 0.125, 3e-05], [0, 0, 0, 0])))
    b = g.add_constant("conv_1/b", np.array([-1, 0, 7, 2**31 - 1], np.int32),
                       ty([4], "i32", per_axis([0.005, 0.01, 0.0625, 1.5e-05], [0, 0, 0, 0])))
    y = Value("conv_1", ty([1, 4, 4, 4], "i8", per_tensor(0.0235, -128)))
    g.ops.append(op("conv", [x, w, b], [y], "model/conv_1/Conv2D", strides=[1, 1], pads=[0, 0, 0, 0],
                    dilations=[1, 1], group=1, activation="relu", act_params=[]))
    lo, hi = (Value(n, ty([1, 2, 4, 4], "i8", per_tensor(0.0235, -128))) for n in ("lo", "hi"))
    g.ops.append(op("split", [y], [lo, hi], "split", axis=1, split=[2, 2]))
    body_in = Value("x", lo.type)
    body_out = Value("y", lo.type)
    body = Graph("npu_0", [body_in], [body_out], [op("relu", [body_in], [body_out], "relu")])
    npu = Value("npu", lo.type)
    g.ops.append(op("partition", [lo], [npu], "npu_0", [body], target="ethos-u55"))
    out = Value("out", ty([1, 4, 4, 4], "i8", per_tensor(0.0235, -128)))
    g.ops.append(op("concat", [npu, hi], [out], "concat", axis=1))
    g.outputs = [out]
    return g


def every_feature() -> Graph:
    """Every dtype, rank 0, empty tensors, inf/nan/-0.0 everywhere floats go, all attr kinds,
    missing operands, nested partitions whose names shadow the outer graph's."""
    seq = Value("seq", ty([2, 1, 3]))
    scalar = Value("scalar", ty([]))
    flag = Value("flag", ty([3, 4], "i1", layout="any layout \"quoted\""))
    g = Graph("every feature", [seq, scalar, flag], [])
    special = np.array([np.inf, -np.inf, np.nan, -0.0, 1e-45, 3.4028235e38, 0.1, -2.5], np.float32)
    payload_nan = np.array([0x7FC00001, 0xFFFFFFFF], np.uint32).view(np.float32)
    consts = {
        "f32": np.concatenate([special, payload_nan]).reshape(2, 5),
        "i8": np.array([-128, -1, 0, 127], np.int8),
        "u8": np.array([0, 1, 128, 255], np.uint8),
        "i16": np.array([[-32768, 32767]], np.int16),
        "i32": np.array([-(2**31), 2**31 - 1, 0], np.int32),
        "i64": np.array([-(2**63), 2**63 - 1, 1], np.int64),
        "i1": np.array([[True, False, True, True]] * 3, np.bool_),
    }
    const_values = {dt: g.add_constant(f"c_{dt}", a, ty(a.shape, dt)) for dt, a in consts.items()}
    zero_d = g.add_constant("zero_d", np.array(np.nan, np.float32), ty([]))
    empty = g.add_constant("empty", np.zeros((0, 3), np.float32), ty([0, 3]))
    empty_q = g.add_constant("empty_q", np.zeros((0, 2), np.int8),
                             ty([0, 2], "i8", per_axis([], [], axis=0)))
    w = g.add_constant("w", np.linspace(-1, 1, 24, dtype=np.float32).reshape(1, 8, 3), ty([1, 8, 3]))
    r = g.add_constant("r", np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 8, 2), ty([1, 8, 2]))
    h0 = g.add_constant("h0", np.zeros((1, 1, 2), np.float32), ty([1, 1, 2]))
    idx = g.add_constant("idx", np.array([2, 0], np.int64), ty([2], "i64"))

    y, y_h = Value("y", ty([2, 1, 1, 2])), Value("y_h", ty([1, 1, 2]))
    g.ops.append(op("lstm", [seq, w, r, None, None, h0], [y, y_h], "lstm", hidden_size=2,
                    activations=["Sigmoid", "Tanh", "Tanh"], direction="forward", clip=float("inf"), layout=0,
                    activation_alpha=[], activation_beta=[0.5, -0.0]))
    s = Value("s", ty([]))
    g.ops.append(op("add", [scalar, zero_d], [s], "rank 0 add"))
    e = Value("e", ty([0, 3]))
    g.ops.append(op("clip", [empty], [e], "", min=float("-inf"), max=float("nan")))
    gathered = Value("gathered", ty([2, 5]))
    g.ops.append(op("gather", [const_values["f32"], idx], [gathered], "gather", axis=0))
    picked = Value("picked", ty([3, 4], "i1"))
    g.ops.append(op("where", [flag, const_values["i1"], flag], [picked], "where"))
    resized = Value("resized", ty([2, 1, 2, 4]))
    g.ops.append(op("resize", [y], [resized], "resize", scales=[1.0, 1.0, 2.0, 2.0], roi=[],
                    mode="linear", cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=-0.0))
    gelu = Value("gelu", ty([2, 1, 2, 4]))
    g.ops.append(op("gelu", [resized], [gelu], "gelu", approximate='we"ird\\ \n\t\x00 ü 😀'))
    cast = Value("cast", ty([3, 4], "u8"))
    g.ops.append(op("cast", [picked], [cast], "cast", to="u8"))
    # a partition of a partition; inner names reuse outer ones (each graph is its own scope)
    inner_x, inner_y = Value("y", ty([1, 1, 2])), Value("s", ty([1, 1, 2]))
    inner = Graph("inner", [inner_x], [inner_y], [op("neg", [inner_x], [inner_y], "neg")])
    mid_x, mid_y = Value("y_h", ty([1, 1, 2])), Value("out", ty([1, 1, 2]))
    mid = Graph("outer", [mid_x], [mid_y])
    mid.add_constant("y_h_scale", np.array([1.5], np.float32), ty([1]))
    mid.ops.append(op("partition", [mid_x], [mid_y], "inner", [inner], target="dsp"))
    part = Value("part", ty([1, 1, 2]))
    g.ops.append(op("partition", [y_h], [part], "outer", [mid], target="npu"))
    g.outputs = [gathered, s, e, picked, cast, gelu, part, *const_values.values(), empty_q, flag, flag]
    return g


def test_conv_model_round_trips():
    round_trip(conv_model())


def test_every_feature_round_trips():
    text = round_trip(every_feature())
    assert " = lstm(%seq, %w, %r, _, _, %h0) {" in text
    assert "clip = inf" in text and "min = -inf" in text and "max = nan" in text
    assert "activation_beta = [0.5, -0.0]" in text
    assert "%zero_d = const tensor<f32> hex\"0000c07f\"" in text
    assert "%empty = const tensor<0x3xf32> hex\"\"" in text
    assert "tensor<0x2xi8, q(axis=0, [], [])>" in text
    assert 'layout="any layout \\"quoted\\""' in text


def test_float_attributes_parse_back_as_floats_and_ints_as_ints():
    x, y = Value("x", ty([2])), Value("y", ty([2]))
    g = Graph("g", [x], [y], [op("leaky_relu", [x], [y], alpha=1)])  # the verifier allows an int here
    text = print_graph(g)
    assert "{alpha = 1.0}" in text
    back = parse(text)
    assert attr_key(back.ops[0].attrs["alpha"]) == ("float", "1.0")
    # hand-written text: ints for FLOAT attributes become floats, INT attributes stay ints
    back = parse("graph @g(%x: tensor<1x2xf32>) -> (%y) {\n"
                 "  %y = softmax(%x) {axis = 1} : tensor<1x2xf32>\n  return %y\n}\n")
    assert attr_key(back.ops[0].attrs["axis"]) == ("int", "1")


HOSTILE = ["plain", "a.b", "1x", "$-", "_", "", "with space", 'q"uote', "back\\slash", "new\nline", "tab\t",
           "cr\r", "nul\x00", "esc\x1b", "line sep\u2028", "nel\x85", "form feed\x0c", "nbsp\xa0",
           "model/conv;1:0", "ünïcödé", "名前", "emoji😀", "lone\ud800surrogate", '%"', "@", "//x",
           "graph", "const", "return", "nan", "-inf", "-1", "hex\"00\""]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_round_trip_one_op_per_line(name):
    x = Value(name, ty([2]))
    g = Graph(name, [x], [])
    c = g.add_constant(name + "'", np.ones(2, np.float32), ty([2]))
    y = Value(name + "!", ty([2]))
    g.ops.append(op("add", [x, c], [y], name))
    g.outputs = [y]
    text = round_trip(g)
    assert len(text.splitlines()) == 5, text
    inner = Value(name, ty([2]))
    outer_in, outer_out = Value("p", ty([2])), Value(name, ty([2]))
    g = Graph("outer", [outer_in], [outer_out], [op("partition", [outer_in], [outer_out], name, [
        Graph(name, [inner], [inner])], target=name)])
    assert len(round_trip(g).splitlines()) == 6


def test_megabyte_constant_round_trips_quickly():
    rng = np.random.default_rng(0)
    data = rng.integers(-128, 128, (256, 64, 8, 8), dtype=np.int8)  # 1 MiB
    x, y = Value("x", ty([1, 64, 8, 8], "i8", per_tensor(0.5, 0))), Value("y", ty([1, 256, 1, 1], "i8"))
    g = Graph("big", [x], [])
    w = g.add_constant("w", data, ty(data.shape, "i8", per_axis(rng.random(256) + 0.01, [0] * 256)))
    g.ops.append(op("conv", [x, w], [y], "conv", strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1))
    g.outputs = [y]
    start = time.perf_counter()
    round_trip(g)
    assert time.perf_counter() - start < 5.0  # ~0.2 s; a backtracking parser would take minutes


# ---- golden ------------------------------------------------------------------------------------
def assert_matches_golden(text: str, name: str):
    """Compare with tests/ir/golden/NAME; EDGECC_UPDATE_GOLDEN=1 rewrites it (check the diff!)."""
    path = GOLDEN / name
    if os.environ.get("EDGECC_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = difflib.unified_diff(expected.splitlines(True), text.splitlines(True), f"golden/{name}", "printed")
        pytest.fail("printed IR differs from the golden file:\n" + "".join(diff), pytrace=False)


def test_conv_model_matches_golden():
    assert_matches_golden(print_graph(conv_model()), "conv_model.edgeir")


def test_golden_file_parses_to_the_model():
    text = (GOLDEN / "conv_model.edgeir").read_text(encoding="utf-8")
    assert_same_graph(parse(text, "conv_model.edgeir"), conv_model())


def test_hand_written_text_with_comments_and_free_layout():
    text = """
    // a comment line
    graph @g(%x: tensor<2xf32>)
        -> (%y) {
      %c = const tensor<2xf32>
           hex"0000803F00000040"   // 1.0, 2.0 (upper-case hex digits)
      %y = mul(%x,%c):tensor<2xf32>   loc( "m" )
      return %y
    }"""
    g = parse(text)
    assert g.constants[0].data.tolist() == [1.0, 2.0]
    assert print_graph(g) == (
        'graph @g(%x: tensor<2xf32>) -> (%y) {\n'
        '  %c = const tensor<2xf32> hex"0000803f00000040"\n'
        '  %y = mul(%x, %c) : tensor<2xf32> loc("m")\n'
        '  return %y\n'
        '}\n')


# ---- errors ------------------------------------------------------------------------------------
GOOD = """graph @g(%x: tensor<1x4xf32>) -> (%y) {
  %y = relu(%x) : tensor<1x4xf32> loc("r")
  return %y
}
"""


def parse_error(text: str) -> IRParseError:
    with pytest.raises(EdgeccError) as info:
        parse(text, "model.edgeir")
    err = info.value
    assert isinstance(err, IRParseError)
    assert "\n" not in str(err)
    assert str(err).startswith(f"model.edgeir:{err.line}:{err.column}: ")
    return err


def edit(old, new):
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize("text, message", [
    (edit("relu(%x)", "relu(%x"), "model.edgeir:2:16: expected ')' or ',', got ':'"),
    (edit(") : tensor", ") tensor"), "model.edgeir:2:17: expected ':' or '{', got 'tensor'"),
    (edit("1x4xf32>) ->", "1x4xf32) ->"), "model.edgeir:1:28: expected ',' or '>', got ')'"),
    (edit("%y = relu", "%y = relu #"), "model.edgeir:2:13: expected '(', got '#'"),
    (edit('loc("r")', 'loc("\\q")'), "model.edgeir:2:39: bad string: an unknown escape, a newline or no closing quote"),
    (GOOD[:-3], "model.edgeir:3:12: expected ',' or '}', got the end of the text"),
    (edit('loc("r")', 'loc("\\U00110000")'), "model.edgeir:2:39: escape beyond the last unicode code point"),
    (edit("%y = relu(%x)", '%y = relu(%"\\U00110000")'), "model.edgeir:2:13: escape beyond the last unicode code point"),
    (edit("%y = relu(%x)", "%y = relu(%z)"), "model.edgeir:2:13: undefined value %z"),
    (edit("%y = relu(%x)", '%"a b" = relu(%x)'), "model.edgeir:1:35: undefined value %y"),
    (edit("%y = relu(%x) : tensor<1x4xf32>", "%x = relu(%x) : tensor<1x4xf32>"),
     "model.edgeir:2:3: %x is already defined"),
    (edit("tensor<1x4xf32> loc", "tensor<1x4xf64> loc"),
     "model.edgeir:2:26: bad tensor shape or element type 1x4xf64 (element types: f32, i8, i4, u8, i16, i32, i64, i1)"),
    (edit("tensor<1x4xf32> loc", "tensor<1x4xf32>, tensor<1x4xf32> loc"),
     "model.edgeir:2:8: 1 results but 2 result types"),
    (edit("return %y", "return %x"), "model.edgeir:3:3: return does not list the graph's outputs (%y)"),
    (edit("relu(%x)", "relu(%x) {alpha = 1, alpha = 2}"), "model.edgeir:2:29: attribute alpha given twice"),
    (edit('  %y = relu', '  %c = const tensor<2xi16> hex"0102"\n  %y = relu'),
     "model.edgeir:2:28: 4 hex digits of data, tensor<2xi16> needs 8"),
    # found by the fuzzer (tests/hostile/test_fuzz.py) escaping as ValueError or OverflowError: the
    # shape token's regex also takes a name holding an x, and integers past int64 or int's digit limit
    (edit("tensor<1x4xf32> loc", "tensor<infx4xf32> loc"),
     "model.edgeir:2:26: bad tensor shape or element type infx4xf32 (element types: " + ", ".join(DTYPES) + ")"),
    (edit("tensor<1x4xf32> loc", "tensor<65536x65536xf32> loc"),
     "model.edgeir:2:26: tensor shape 65536x65536 holds more than the 2147483647 elements the generated C can index"),
    (edit("tensor<1x4xf32> loc", "tensor<0x99999999999999999999xf32> loc"),
     "model.edgeir:2:26: integer '99999999999999999999' is out of the 64-bit range"),
    (edit("relu(%x)", "relu(%x) {alpha = 9223372036854775808}"),
     "model.edgeir:2:26: integer '9223372036854775808' is out of the 64-bit range"),
])
def test_errors_point_at_line_and_column(text, message):
    assert str(parse_error(text)) == message


@pytest.mark.parametrize("text, message", [
    (edit("relu(%x) : tensor<1x4xf32>", "relu(%x) : tensor<1x5xf32>"),
     "model.edgeir:2:3: op 'r' (relu): result %y has shape [1, 5], the operands give [1, 4]"),
    (edit("relu(%x)", "relu(%x, %x)"), "model.edgeir:2:3: op 'r' (relu): 2 operands, expected 1..1"),
    (edit("relu(%x)", "frobnicate(%x)"), "model.edgeir:2:3: op 'r' (frobnicate): unknown op kind"),
    (edit("relu(%x)", 'relu(%x) {alpha = 1.0}'), "model.edgeir:2:3: op 'r' (relu): unknown attribute alpha"),
    (edit("graph @g(%x: tensor<1x4xf32>)", "graph @g(%x: tensor<1x4xi8, q(-0.5, 0)>)"),
     "model.edgeir:1:7: %x: quantization scale must be positive"),
    ("graph @g(%x: tensor<1x1x4x4xf32>, %w: tensor<1x1x3x3xf32>) -> (%y) {\n"
     "  %y = conv(%x, %w) {dilations = [1], group = 1, pads = [0, 0], strides = [1]} : tensor<1x1x2x2xf32>\n"
     "  return %y\n}\n",
     "model.edgeir:2:3: op '' (conv): cannot infer result shapes (IndexError: list index out of range)"),
    (edit("graph @g(%x: tensor<1x4xf32>)", "graph @g(%x: tensor<1x4xi8, q(1e400, 0)>)"),
     "model.edgeir:1:7: %x: quantization scale must be finite"),
    (edit("graph @g(%x: tensor<1x4xf32>)", "graph @g(%x: tensor<1x4xi8, q(0.5, 128)>)"),
     "model.edgeir:1:7: %x: zero point outside the range of i8 (-128..127)"),
    (edit("graph @g(%x: tensor<1x4xf32>)", "graph @g(%x: tensor<1x4xi1, q(0.5, 0)>)"),
     "model.edgeir:1:7: %x: a boolean tensor cannot carry quantization"),
])
def test_verify_failures_become_edgecc_errors(text, message):
    assert str(parse_error(text)) == message


def test_verify_failure_inside_a_partition_points_at_its_body():
    text = """graph @g(%x: tensor<2xi8>) -> (%y) {
  %y = partition(%x) {target = "npu"} : tensor<2xi8> graph @body(%a: tensor<2xi8>) -> (%b) {
    %b = relu(%a) : tensor<3xi8>
    return %b
  } loc("p")
  return %y
}
"""
    assert str(parse_error(text)) == (
        "model.edgeir:3:5: op '' (relu): result %b has shape [3], the operands give [2]")


def test_grammar_has_no_lalr_conflicts(caplog):
    """lark resolves shift/reduce conflicts silently (as shift), which once made `%y = op(...)`
    unparseable; it only reports them in debug mode."""
    caplog.set_level(logging.DEBUG, logger="lark")
    grammar = files("edgecc.ir").joinpath("edgeir.lark").read_text(encoding="utf-8")
    Lark(grammar, parser="lalr", maybe_placeholders=False, debug=True)
    assert not [r.getMessage() for r in caplog.records if "conflict" in r.getMessage().lower()]
