"""Print a Graph as edgecc's textual IR, the one form every test and dump speaks.

    graph @main(%x: tensor<1x49x10x1xi8, q(0.5, -128)>) -> (%y) {
      %w = const tensor<64x1x10x4xi8, q(axis=0, [0.01, 0.02, ...], [0, 0, ...])> hex"0a0bff..."
      %y = conv(%x, %w, %b) {dilations = [1, 1], group = 1, ...} : tensor<1x25x5x64xi8, q(0.0235, -128)> loc("conv_1")
      %a, %b = split(%y) {axis = 1, split = [32, 32]} : tensor<...>, tensor<...> loc("split")
      %h = lstm(%x, %w, %r, _, _, %h0) {...} : tensor<...>       `_` is a missing optional operand
      return %y
    }

Layout: constants first, then ops, one per line; attributes sorted by name; `loc("...")` is
the op's layer name (left out when empty); a partition's body follows its result types as an
indented nested `graph` block. Names that are not [A-Za-z0-9_.$-]+ print quoted with escapes,
so hostile ONNX names never break a line. Floats print with repr (shortest round trip, inf, nan);
constant data prints as the hex of its little-endian bytes (i4: packed two a byte). The output is deterministic and
`parse(print_graph(g))` rebuilds g exactly (ir/parser.py, ir/edgeir.lark).
"""
from __future__ import annotations

import re

import numpy as np

from .graph import Graph, Op, Value
from .ops import FLOAT, FLOATS, OPS
from .types import Quant, TensorType, data_bytes

INDENT = "  "
_BARE_NAME = re.compile(r"[A-Za-z0-9_.$-]+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(s: str) -> str:
    """A double-quoted string literal; control and other non-printable characters escaped."""
    if s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = []
    for ch in s:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def value_ref(name: str) -> str:
    """`%name`, or `%"..."` when the name has characters outside [A-Za-z0-9_.$-]."""
    return "%" + (name if _BARE_NAME.fullmatch(name) else quote(name))


def graph_ref(name: str) -> str:
    return "@" + (name if _BARE_NAME.fullmatch(name) else quote(name))


def _word(s: str) -> str:
    """An attribute name or layout: bare when it is an identifier, else quoted."""
    return s if _WORD.fullmatch(s) else quote(s)


def format_float(x) -> str:
    return repr(float(x))


def format_quant(q: Quant) -> str:
    if q.axis is None:
        return f"q({format_float(q.scale[0])}, {int(q.zero_point[0])})"
    scales = ", ".join(map(format_float, q.scale))
    zero_points = ", ".join(str(int(z)) for z in q.zero_point)
    return f"q(axis={q.axis}, [{scales}], [{zero_points}])"


def format_type(t: TensorType) -> str:
    parts = ["x".join([*map(str, t.shape), t.dtype])]
    if t.quant is not None:
        parts.append(format_quant(t.quant))
    if t.layout is not None:
        parts.append(f"layout={_word(t.layout)}")
    return f"tensor<{', '.join(parts)}>"


def format_attr(value, as_float: bool = False) -> str:
    """An attribute value; `as_float` prints numbers of FLOAT/FLOATS attributes as floats even
    when the graph holds Python ints, so they parse back as floats."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(format_attr(v, as_float) for v in value) + "]"
    if isinstance(value, str):
        return quote(value)
    if as_float or isinstance(value, (float, np.floating)):
        return format_float(value)
    return str(int(value))


def _attrs(op: Op) -> str:
    if not op.attrs:
        return ""
    declared = OPS[op.kind].attrs if op.kind in OPS else {}
    items = []
    for name in sorted(op.attrs):
        as_float = declared.get(name, (None,))[0] in (FLOAT, FLOATS)
        items.append(f"{_word(name)} = {format_attr(op.attrs[name], as_float)}")
    return " {" + ", ".join(items) + "}"


def _hex(c: Value) -> str:
    return data_bytes(c.type, c.data).hex()


def _op_lines(op: Op, indent: str) -> list[str]:
    results = ", ".join(value_ref(r.name) for r in op.results)
    operands = ", ".join("_" if v is None else value_ref(v.name) for v in op.operands)
    types = ", ".join(format_type(r.type) for r in op.results)
    lines = [f"{indent}{results} = {op.kind}({operands}){_attrs(op)} : {types}"]
    for region in op.regions:
        body = _graph_lines(region, indent)
        lines[-1] += " " + body[0]
        lines += body[1:]
    if op.name:
        lines[-1] += f" loc({quote(op.name)})"
    return lines


def _graph_lines(g: Graph, indent: str) -> list[str]:
    """The graph's lines; the first is not indented (it may follow an op's result types)."""
    args = ", ".join(f"{value_ref(v.name)}: {format_type(v.type)}" for v in g.inputs)
    outputs = ", ".join(value_ref(v.name) for v in g.outputs)
    inner = indent + INDENT
    lines = [f"graph {graph_ref(g.name)}({args}) -> ({outputs}) {{"]
    for c in g.constants:
        lines.append(f'{inner}{value_ref(c.name)} = const {format_type(c.type)} hex"{_hex(c)}"')
    for op in g.ops:
        lines += _op_lines(op, inner)
    lines.append(f"{inner}return {outputs}".rstrip())
    lines.append(indent + "}")
    return lines


def print_graph(g: Graph) -> str:
    """The graph's canonical text, ending with a newline."""
    return "\n".join(_graph_lines(g, "")) + "\n"
