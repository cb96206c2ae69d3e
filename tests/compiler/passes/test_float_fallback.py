"""float_fallback: quantized ops the backend refuses run as dequantize -> float op -> quantize."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, FakeBackend, check_pass, context, kinds, q  # noqa: E402

CONV = dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1])


def refuse_kinds(*refused):
    """A backend with integer kernels for everything but `refused` (float kernels for all)."""
    def why_not(op):
        quantized = any(v.type.quant is not None for v in op.inputs() + op.results)
        return f"no int8 {op.kind}" if quantized and op.kind in refused else None
    return FakeBackend(why_not)


def test_refused_quantized_ops_golden():
    b = Builder("fallback")
    x = b.input("x", (1, 2, 4, 4), "i8", q(0.05, -3))
    w = b.weights("w", (3, 2, 3, 3), "i8", q([0.01, 0.02, 0.03], 0, axis=0))
    c = b.op("conv", [x, w], name="conv", quant=q(0.1, 4), **CONV)
    s = b.op("softmax", [c], name="softmax", axis=1, quant=q(1 / 256, -128))
    t = b.op("sigmoid", [c], name="sigmoid", quant=q(1 / 256, -128))  # shares the dequantize of c
    f = b.op("tanh", [b.input("f", (1, 3, 4, 4))], name="float_op")  # float: left to the backend
    g = check_pass("float_fallback", b.graph(s, t, f), "float_fallback", ctx=context(refuse_kinds("softmax", "sigmoid",
                                                                                                    "tanh")), codes=1)
    assert kinds(g) == ["conv", "dequantize", "softmax", "quantize", "sigmoid", "quantize", "tanh"]
    assert [v.name for v in g.outputs] == ["softmax", "sigmoid", "float_op"]


def test_constants_are_dequantized_once_here():
    b = Builder()
    x = b.input("x", (1, 2, 4, 4), "i8", q(0.05, -3))
    w = b.weights("w", (3, 2, 3, 3), "i8", q([0.01, 0.02, 0.03], 0, axis=0))
    c = b.op("conv", [x, w], name="conv", dtype="f32", **CONV)  # mixed: quantized in, float out
    g = check_pass("float_fallback", b.graph(c), ctx=context(refuse_kinds("conv")))
    assert kinds(g) == ["dequantize", "conv"]
    w_f32 = g.ops[1].operands[1]
    assert w_f32.is_const and w_f32.type.dtype == "f32" and w_f32.type.quant is None


def test_supported_and_crossing_ops_untouched():
    b = Builder()
    x = b.input("x", (4,), "i8", q(0.5, 1))
    d = b.op("dequantize", [x], name="d", dtype="f32")
    r = b.op("relu", [b.op("quantize", [d], name="qq", dtype="u8", quant=q(0.25, 0))], name="r", quant=q(0.25, 0))
    g = check_pass("float_fallback", b.graph(r), ctx=context(refuse_kinds("softmax")))
    assert kinds(g) == ["dequantize", "quantize", "relu"]
