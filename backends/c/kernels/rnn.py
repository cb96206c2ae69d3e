"""Recurrent layers: LSTM and GRU with every ONNX attribute (directions, layout, activations with
their alpha/beta, clip, sequence_lens, initial states, peepholes, input_forget,
linear_before_reset); float32 only.

One sequence at a time (batch entries are independent), one direction after the other: the
state lives in arena scratch, each step computes all gate pre-activations as dot products with
the rows of W and R, then updates the state element by element. Python resolves what is fixed at
compile time: which optional operands exist, the activation functions as C expressions, the
strides of the chosen layout. Steps past a sequence's length leave Y zero, as onnxruntime does.
"""
from __future__ import annotations

import re

from . import Kernel, Unsupported, c_float, kernel

# ONNX RNN activation: C expression of `v`, and the defaults of the alpha and beta it takes
# (None: takes none). Alphas and betas are consumed in activation order, only by those taking them.
ACTIVATIONS = {
    "sigmoid": ("1.0f / (1.0f + expf(-v))", None, None),
    "tanh": ("tanhf(v)", None, None),
    "relu": ("v > 0.0f ? v : 0.0f", None, None),
    "affine": ("{alpha} * v + {beta}", 1.0, 0.0),
    "leakyrelu": ("v >= 0.0f ? v : {alpha} * v", 0.01, None),
    "thresholdedrelu": ("v > {alpha} ? v : 0.0f", 1.0, None),
    "scaledtanh": ("{alpha} * tanhf({beta} * v)", 1.0, 1.0),
    "hardsigmoid": ("fmaxf(0.0f, fminf(1.0f, {alpha} * v + {beta}))", 0.2, 0.5),
    "elu": ("v >= 0.0f ? v : {alpha} * (expf(v) - 1.0f)", 1.0, None),
    "softsign": ("v / (1.0f + fabsf(v))", None, None),
    "softplus": ("v > 20.0f ? v : log1pf(expf(v))", None, None),  # log(1 + e^v) without overflow
}
GATES = {"lstm": 4, "gru": 3}
FUNCS = {"lstm": 3, "gru": 2}  # activations per direction: (f, g, h) and (f, g)


def activation_exprs(op, dirs: int) -> list:
    """Per direction, the activation functions as C expression templates over `v`."""
    names = [n.lower() for n in op.attrs["activations"]]
    per_dir = FUNCS[op.kind]
    if len(names) == per_dir and dirs == 2:
        names = names * 2
    if len(names) != per_dir * dirs:
        raise Unsupported(f"{op.kind}: {len(names)} activations for {dirs} direction(s)")
    alphas, betas = list(op.attrs["activation_alpha"]), list(op.attrs["activation_beta"])
    exprs = []
    for name in names:
        if name not in ACTIVATIONS:
            raise Unsupported(f"{op.kind} activation {name}")
        text, alpha, beta = ACTIVATIONS[name]
        if alpha is not None:
            alpha = alphas.pop(0) if alphas else alpha
        if beta is not None:
            beta = betas.pop(0) if betas else beta
        exprs.append(text.format(alpha=c_float(alpha or 0.0), beta=c_float(beta or 0.0)))
    return [exprs[d * per_dir:(d + 1) * per_dir] for d in range(dirs)]


def apply(expr: str, arg: str) -> str:
    return re.sub(r"\bv\b", arg, expr)


@kernel("lstm", "gru")
def rnn(op):
    x = op.operands[0]
    for v in op.operands[:4] + op.operands[5:] + op.results:
        if v is not None and (v.type.dtype != "f32" or v.type.quant is not None):
            raise Unsupported(f"{op.kind} on {v.type.dtype} (float32 only)")
    a = op.attrs
    layout, hidden = a["layout"], a["hidden_size"]
    dirs = 2 if a["direction"] == "bidirectional" else 1
    if a["direction"] not in ("forward", "reverse", "bidirectional"):
        raise Unsupported(f"{op.kind} direction {a['direction']}")
    steps, batch, size = (x.type.shape if layout == 0 else (x.type.shape[1], x.type.shape[0], x.type.shape[2]))
    seq_lens = op.operands[4] if len(op.operands) > 4 else None
    if seq_lens is not None and seq_lens.type.dtype not in ("i32", "i64"):
        raise Unsupported(f"{op.kind} sequence_lens of type {seq_lens.type.dtype}")
    gates = GATES[op.kind]
    acts = activation_exprs(op, dirs)
    lbr = op.kind == "gru" and a["linear_before_reset"]

    def present(j):
        return len(op.operands) > j and op.operands[j] is not None

    # element strides of X[t, b, :], Y[t, d, b, :] and the states [d, b, :] in the chosen layout
    if layout == 0:  # X [T, N, I], Y [T, D, N, H], states [D, N, H]
        xs = dict(t=batch * size, b=size)
        ys = dict(t=dirs * batch * hidden, d=batch * hidden, b=hidden)
        ss = dict(d=batch * hidden, b=hidden)
    else:  # batch first: X [N, T, I], Y [N, T, D, H], states [N, D, H]
        xs = dict(t=size, b=steps * size)
        ys = dict(t=dirs * hidden, d=hidden, b=steps * dirs * hidden)
        ss = dict(d=hidden, b=dirs * hidden)
    directions = []
    for d in range(dirs):
        f = acts[d]
        directions.append(dict(
            index=d, reverse=a["direction"] == "reverse" or d == 1, w=d * gates * hidden * size,
            r=d * gates * hidden * hidden, bias=d * 2 * gates * hidden, peep=d * 3 * hidden,
            y=d * ys["d"], state=d * ss["d"],
            f={n: apply(f[0], n) for n in ("vi", "vf", "vo", "vz")},
            g={n: apply(f[1], n) for n in ("vc", "vh")},
            h=apply(f[2], "cn") if op.kind == "lstm" else None))
    # h, c (LSTM), the gates, r * h (GRU unless linear_before_reset)
    state_floats = hidden * (2 if op.kind == "lstm" else 1) + gates * hidden
    if op.kind == "gru" and not lbr:
        state_floats += hidden
    return Kernel("rnn.c.j2", dict(
        cell=op.kind, H=hidden, I=size, T=steps, N=batch, G=gates, dirs=directions, xs=xs, ys=ys, ss=ss,
        has_b=present(3), has_seq=seq_lens is not None, has_h0=present(5), has_c0=present(6),
        has_p=present(7), input_forget=op.kind == "lstm" and a["input_forget"], lbr=lbr,
        clip=c_float(a["clip"]) if a["clip"] > 0 else None, n_results=len(op.results)),
        scratch=4 * state_floats)
