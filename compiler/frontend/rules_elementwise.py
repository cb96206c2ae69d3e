"""Lifting rules for elementwise ops: activations, arithmetic, comparisons, Clip, Cast, Where."""
from __future__ import annotations

import numpy as np

from edgecc.ir.types import DTYPE_NAMES

from .context import NodeView, lifts

UNARY = {
    "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
    "Reciprocal": "reciprocal", "Abs": "abs", "Neg": "neg", "Floor": "floor", "Ceil": "ceil", "Round": "round",
    "Erf": "erf", "Softplus": "softplus", "Softsign": "softsign", "Mish": "mish", "HardSwish": "hard_swish",
    "Not": "not", "Identity": "identity",
}
BINARY = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "And": "and", "Or": "or",
    "Equal": "equal", "Less": "less", "Greater": "greater", "LessOrEqual": "less_or_equal",
    "GreaterOrEqual": "greater_or_equal", "PRelu": "prelu",
}
VARIADIC = {"Max": "max", "Min": "min", "Sum": "sum", "Mean": "mean"}
# ONNX op -> (IR kind, attributes copied with their ONNX defaults)
PARAMETRIC = {
    "LeakyRelu": ("leaky_relu", {"alpha": 0.01}),
    "Elu": ("elu", {"alpha": 1.0}),
    "Selu": ("selu", {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}),
    "HardSigmoid": ("hard_sigmoid", {"alpha": 0.2, "beta": 0.5}),
    "Gelu": ("gelu", {"approximate": "none"}),
}


@lifts(*UNARY)
def unary(n: NodeView):
    n.emit(UNARY[n.op_type], [n.input(0)])


@lifts(*BINARY)
def binary(n: NodeView):
    n.emit(BINARY[n.op_type], [n.input(0), n.input(1)])


@lifts(*VARIADIC)
def variadic(n: NodeView):
    n.emit(VARIADIC[n.op_type], [v for v in n.inputs() if v is not None])


@lifts(*PARAMETRIC)
def parametric(n: NodeView):
    kind, defaults = PARAMETRIC[n.op_type]
    if kind == "gelu":
        n.choice("approximate", "none", ("none", "tanh"))
    attrs = {name: n.attr(name, default) for name, default in defaults.items()}
    n.emit(kind, [n.input(0)], {k: float(v) if isinstance(v, float) else v for k, v in attrs.items()})


@lifts("Mod")
def mod(n: NodeView):
    n.emit("mod", [n.input(0), n.input(1)], {"fmod": int(n.attr("fmod", 0))})


@lifts("Where")
def where(n: NodeView):
    n.emit("where", [n.input(0), n.input(1), n.input(2)])


@lifts("Clip")
def clip(n: NodeView):
    """Bounds are attributes before opset 11 and constant inputs from 11 on."""
    attrs = {}
    if n.opset < 11:
        attrs = {k: float(n.attr(k)) for k in ("min", "max") if n.attr(k) is not None}
    else:
        for i, key in ((1, "min"), (2, "max")):
            bound = n.const(i, key)
            if bound is not None:
                attrs[key] = float(np.asarray(bound).reshape(()))
    n.emit("clip", [n.input(0)], attrs)


@lifts("Cast")
def cast(n: NodeView):
    n.emit("cast", [n.input(0)], {"to": DTYPE_NAMES[n.out_type().np_dtype]})


@lifts("Dropout")
def dropout(n: NodeView):
    """Inference: the data passes through and the mask (when asked for) is all true."""
    if n.has_input(2) and bool(np.asarray(n.const(2, "training_mode")).reshape(())):
        n.unsupported("training_mode", 1)
    n.emit("identity", [n.input(0)], types=[n.out_type(0)])
    if n.has_output(1):
        n.bind(1, n.constant(np.ones(n.out_shape(1), bool), "mask"))
