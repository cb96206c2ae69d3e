"""Parse edgecc's textual IR (ir/edgeir.lark, the form ir/printer.py writes) back into a Graph.

lark's LALR parser turns the text into a tree; `_Reader` walks it, resolving value names in
textual order (each nested graph is its own scope), and verifies each op as it is built so
that an error points at the op's line. Every problem with the text, syntax or meaning, is an
`IRParseError`: one line, `file:line:col: what is wrong`.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib.resources import files

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from .errors import EdgeccError
from .graph import Graph, Op, Value
from .ops import FLOAT, FLOATS, OPS
from .printer import format_type, value_ref
from .types import DTYPES, Quant, TensorType, data_from_bytes
from .verifier import VerifyError, verify, verify_op


class IRParseError(EdgeccError):
    """The text is not a valid graph; `str()` is `file:line:col: reason`."""

    def __init__(self, reason: str, filename: str, line: int, column: int):
        super().__init__(reason, file=f"{filename}:{line}:{column}")
        self.filename, self.line, self.column = filename, line, column


@lru_cache(maxsize=None)
def _lark() -> Lark:
    grammar = files(__package__).joinpath("edgeir.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", maybe_placeholders=False)


def parse(text: str, filename: str = "<text>") -> Graph:
    """The graph the text describes, verified. Raises IRParseError (an EdgeccError)."""
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, filename) from None
    return _Reader(filename).graph(tree.children[0])


# ---- syntax errors -----------------------------------------------------------------------------
_TERMINAL_NAMES = {
    "VALUE": "a value name (%name)", "GRAPH_NAME": "a graph name (@name)", "NAME": "a name",
    "STRING": "a string", "INT": "an integer", "FLOAT": "a float", "HEX": 'hex"..." data',
    "SHAPE_DTYPE": "a shape and element type (1x3xf32)", "$END": "the end of the text",
}


def _terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    pattern = _lark().get_terminal(name).pattern
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name


def _shown(text: str) -> str:
    text = str(text)  # a lark Token is a str whose repr names its type
    return repr(text if len(text) <= 24 else text[:24] + "...")


def _expected(terminals, got: str) -> str:
    expected = sorted(_terminal(t) for t in terminals)
    if len(expected) > 1:
        expected = [f"{', '.join(expected[:-1])} or {expected[-1]}"]
    return f"expected {expected[0]}, got {got}" if expected else f"unexpected {got}"


def _syntax_error(e: UnexpectedInput, text: str, filename: str) -> IRParseError:
    line, column = e.line, e.column
    if isinstance(e, UnexpectedToken) and e.token.type == "$END":
        # lark places the end at the last token; point just past the text instead
        line, column = text.count("\n") + 1, len(text) - text.rfind("\n")
        reason = _expected(e.expected, "the end of the text")
    elif isinstance(e, UnexpectedToken):
        reason = _expected(e.expected, _shown(e.token))
    elif isinstance(e, UnexpectedCharacters) and '"' in text[e.pos_in_stream:e.pos_in_stream + 2]:
        reason = "bad string: an unknown escape, a newline or no closing quote"  # "...", %"..." or @"..."
    elif isinstance(e, UnexpectedCharacters):
        reason = _expected(e.allowed, _shown(e.char))
    else:
        reason = str(e).splitlines()[0]
    return IRParseError(reason, filename, line, column)


# ---- from tree to graph ------------------------------------------------------------------------
_SHAPE_DTYPE = re.compile(r"((?:[0-9]+x)*)([a-z][a-z0-9]*)")
MAX_ELEMENTS = 2**31 - 1  # the C backend's loops index tensors with `int`
_UNESCAPE = re.compile(r'\\(["\\ntr]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})')
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


class _Reader:
    def __init__(self, filename: str):
        self.filename = filename

    def fail(self, where: Token, reason: str):
        raise IRParseError(reason, self.filename, where.line, where.column)

    # ---- leaves ------------------------------------------------------------------------------
    def string(self, tok: Token, prefix: int = 0) -> str:
        """The value of the string literal in `tok` after `prefix` characters (the % of %"...")."""
        def unescape(m):
            esc = m.group(1)
            return _SIMPLE_ESCAPES[esc] if esc in _SIMPLE_ESCAPES else chr(int(esc[1:], 16))

        try:
            return _UNESCAPE.sub(unescape, tok[prefix + 1:-1])
        except ValueError:
            self.fail(tok, "escape beyond the last unicode code point")

    def name(self, tok: Token) -> str:
        """The name in a `%name`, `%"..."`, `@name` or `@"..."` token."""
        return self.string(tok, prefix=1) if tok[1] == '"' else tok[1:]

    def word(self, tok: Token) -> str:
        return self.string(tok) if tok.type == "STRING" else str(tok)

    def integer(self, tok: Token, digits: str | None = None) -> int:
        """The integer in `tok` (or in `digits`, a part of it): attributes, dimensions, zero points and
        axes are 64-bit (ONNX's int64), and a longer literal is refused before Python converts it."""
        digits = str(tok) if digits is None else digits
        value = int(digits) if len(digits.lstrip("-")) <= 19 else None
        if value is None or not -2**63 <= value < 2**63:
            self.fail(tok, f"integer {_shown(digits)} is out of the 64-bit range")
        return value

    def scalar(self, tok: Token):
        return {"INT": self.integer, "FLOAT": float, "STRING": self.string}[tok.type](tok)

    def type(self, tree: Tree) -> TensorType:
        shape_dtype, *extras = tree.children
        # the token's regex also takes a name holding an `x` ("infx12xi8"): split digits from the type here
        m = _SHAPE_DTYPE.fullmatch(shape_dtype)
        if m is None or m.group(2) not in DTYPES:
            self.fail(shape_dtype, f"bad tensor shape or element type {shape_dtype} "
                                   f"(element types: {', '.join(DTYPES)})")
        dims = [self.integer(shape_dtype, d) for d in m.group(1).split("x")[:-1]]
        if any(d > MAX_ELEMENTS for d in dims) or math.prod(dims) > MAX_ELEMENTS:
            self.fail(shape_dtype, f"tensor shape {'x'.join(map(str, dims))} holds more than the "
                                   f"{MAX_ELEMENTS} elements the generated C can index")
        dtype = m.group(2)
        quant = layout = None
        for extra in extras:
            if extra.data == "quant_tensor":
                scale, zero_point = extra.children
                quant = Quant((float(scale),), (self.integer(zero_point),))
            elif extra.data == "quant_axis":
                axis, scales, zero_points = extra.children
                if len(scales.children) != len(zero_points.children):
                    self.fail(axis, "per-axis quantization needs as many zero points as scales")
                quant = Quant(tuple(float(s) for s in scales.children),
                              tuple(self.integer(z) for z in zero_points.children), self.integer(axis))
            else:
                layout = self.word(extra.children[0])
        return TensorType(tuple(dims), dtype, quant, layout)

    def attrs(self, tree: Tree, kind: str) -> dict:
        declared = OPS[kind].attrs if kind in OPS else {}
        attrs = {}
        for attr in tree.children:
            name_tok, value = attr.children
            name = self.word(name_tok)
            if name in attrs:
                self.fail(name_tok, f"attribute {name} given twice")
            if isinstance(value, Tree):  # a list
                value = [self.scalar(v) for v in value.children]
            else:
                value = self.scalar(value)
            if declared.get(name, (None,))[0] in (FLOAT, FLOATS):  # `alpha = 1` means 1.0
                value = [_as_float(v) for v in value] if isinstance(value, list) else _as_float(value)
            attrs[name] = value
        return attrs

    # ---- values, ops, graphs -----------------------------------------------------------------
    def define(self, scope: dict, tok: Token, value: Value) -> Value:
        if value.name in scope:
            self.fail(tok, f"{value_ref(value.name)} is already defined")
        scope[value.name] = value
        return value

    def use(self, scope: dict, tok: Token) -> Value | None:
        if tok.type == "MISSING":
            return None
        name = self.name(tok)
        if name not in scope:
            self.fail(tok, f"undefined value {value_ref(name)}")
        return scope[name]

    def const(self, tree: Tree, scope: dict) -> Value:
        name_tok, type_tree, hex_tok = tree.children
        t = self.type(type_tree)
        digits = hex_tok[4:-1]  # hex"..."
        if len(digits) != 2 * t.nbytes:
            self.fail(hex_tok, f"{len(digits)} hex digits of data, {format_type(t)} needs {2 * t.nbytes}")
        data = data_from_bytes(t, bytes.fromhex(digits))
        return self.define(scope, name_tok, Value(self.name(name_tok), t, data))

    def op(self, tree: Tree, scope: dict) -> Op:
        *result_toks, kind_tok, operands, attrs, types, regions, loc = tree.children
        kind = str(kind_tok)
        if len(types.children) != len(result_toks):
            self.fail(kind_tok, f"{len(result_toks)} results but {len(types.children)} result types")
        op = Op(kind,
                operands=[self.use(scope, tok) for tok in operands.children],
                results=[Value(self.name(tok), self.type(t)) for tok, t in zip(result_toks, types.children)],
                attrs=self.attrs(attrs, kind),
                name=self.string(loc.children[0]) if loc.children else "",
                regions=[self.graph(g) for g in regions.children])
        try:
            verify_op(op)
        except VerifyError as e:
            self.fail(result_toks[0], str(e))
        for tok, r in zip(result_toks, op.results):
            self.define(scope, tok, r)
        return op

    def graph(self, tree: Tree) -> Graph:
        name_tok, args, outputs, body, return_tok, returned = tree.children
        scope: dict = {}
        g = Graph(self.name(name_tok), inputs=[], outputs=[])
        for arg in args.children:
            tok, type_tree = arg.children
            g.inputs.append(self.define(scope, tok, Value(self.name(tok), self.type(type_tree))))
        for stmt in body.children:
            if stmt.data == "const":
                g.constants.append(self.const(stmt, scope))
            else:
                g.ops.append(self.op(stmt, scope))
        g.outputs = [self.use(scope, tok) for tok in outputs.children]
        if [self.use(scope, tok) for tok in returned.children] != g.outputs:
            self.fail(return_tok, f"return does not list the graph's outputs ({', '.join(outputs.children)})")
        try:
            verify(g)
        except VerifyError as e:
            self.fail(name_tok, str(e))
        return g


def _as_float(v):
    return float(v) if isinstance(v, int) else v
