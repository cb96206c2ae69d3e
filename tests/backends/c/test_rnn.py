"""C kernels for LSTM and GRU: directions, layouts, activations with alpha/beta, clip,
sequence_lens, initial states, peepholes, input_forget, linear_before_reset, absent operands.

onnx's reference implementation ignores activations, clip, sequence_lens and input_forget, and
onnxruntime has no layout 1, so the oracle is a plain numpy model of the ONNX equations below;
test_numpy_model_matches_onnxruntime ties it to onnxruntime wherever that runs the case.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.kernels import Unsupported, select
from edgecc.backends.c.runner import have_cc
from edgecc.ir import Op, TensorType, Value
from edgecc.ir.ops import fill_defaults

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Arg, Case, const, kernel_tests, onnx_ref  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(1)

# ---- the numpy model ------------------------------------------------------------------------
FUNCS = {  # name: (function of x, alpha, beta), default alpha, default beta (None: takes none)
    "sigmoid": (lambda x, a, b: 1 / (1 + np.exp(-x)), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: np.log1p(np.exp(x)), None, None),
}


def functions(names, alphas, betas):
    alphas, betas, out = list(alphas), list(betas), []
    for n in names:
        f, a, b = FUNCS[n.lower()]
        a = alphas.pop(0) if a is not None and alphas else a
        b = betas.pop(0) if b is not None and betas else b
        out.append(lambda x, f=f, a=a, b=b: f(x, a, b))
    return out


def recurrent(kind, X, W, R, B=None, seq=None, h0=None, c0=None, P=None, direction="forward", activations=None,
              activation_alpha=(), activation_beta=(), clip=0.0, layout=0, input_forget=0, linear_before_reset=0,
              **_):
    """Y, Y_h(, Y_c) of an ONNX LSTM or GRU, in float64, one sequence and step at a time."""
    per_dir, gates = (3, 4) if kind == "lstm" else (2, 3)
    if layout:
        X = X.transpose(1, 0, 2)
        h0, c0 = [None if s is None else s.transpose(1, 0, 2) for s in (h0, c0)]
    T, N, _ = X.shape
    D, H = W.shape[0], W.shape[1] // gates
    fs = functions(activations or (["Sigmoid", "Tanh", "Tanh"][:per_dir] * D), activation_alpha, activation_beta)
    cl = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)
    Y, Yh, Yc = np.zeros((T, D, N, H)), np.zeros((D, N, H)), np.zeros((D, N, H))
    for d in range(D):
        f, g = fs[per_dir * d], fs[per_dir * d + 1]
        b = np.zeros(2 * gates * H) if B is None else B[d].astype(np.float64)
        wb, rb = b[:gates * H], b[gates * H:]
        p = np.zeros(3 * H) if P is None else P[d]
        for n in range(N):
            L = T if seq is None else int(seq[n])
            h = np.zeros(H) if h0 is None else h0[d, n].astype(np.float64)
            c = np.zeros(H) if c0 is None else c0[d, n].astype(np.float64)
            backwards = direction == "reverse" or d == 1
            for t in (range(L - 1, -1, -1) if backwards else range(L)):
                xw = W[d] @ X[t, n] + wb
                if kind == "lstm":
                    pre = xw + R[d] @ h + rb
                    gi, go, gf, gc = np.split(pre, 4)
                    i = f(cl(gi + p[:H] * c))
                    ff = 1 - i if input_forget else f(cl(gf + p[2 * H:] * c))
                    c = ff * c + i * g(cl(gc))
                    h = f(cl(go + p[H:2 * H] * c)) * fs[per_dir * d + 2](c)
                else:
                    z = f(cl(xw[:H] + R[d][:H] @ h + rb[:H]))
                    r = f(cl(xw[H:2 * H] + R[d][H:2 * H] @ h + rb[H:2 * H]))
                    if linear_before_reset:
                        ht = g(cl(xw[2 * H:] + r * (R[d][2 * H:] @ h + rb[2 * H:])))
                    else:
                        ht = g(cl(xw[2 * H:] + R[d][2 * H:] @ (r * h) + rb[2 * H:]))
                    h = (1 - z) * ht + z * h
                Y[t, d, n] = h
            Yh[d, n], Yc[d, n] = h, c
    outs = [Y, Yh, Yc] if kind == "lstm" else [Y, Yh]
    if layout:
        outs = [outs[0].transpose(2, 0, 1, 3)] + [o.transpose(1, 0, 2) for o in outs[1:]]
    return [o.astype(np.float32) for o in outs]


# ---- cases --------------------------------------------------------------------------------
T, N, I, H = 4, 3, 5, 3


def operands(kind, dirs=1, layout=0, bias=True, seq=False, h0=False, c0=False, peep=False):
    """Random operands in ONNX order (None where absent)."""
    gates = 4 if kind == "lstm" else 3
    r = lambda *s: (rng.standard_normal(s) * 0.6).astype(np.float32)  # noqa: E731
    state = (N, dirs, H) if layout else (dirs, N, H)
    ops = [r(*((N, T, I) if layout else (T, N, I))), r(dirs, gates * H, I), r(dirs, gates * H, H),
           r(dirs, 2 * gates * H) if bias else None, np.array([4, 2, 3], np.int32) if seq else None,
           r(*state) if h0 else None]
    if kind == "lstm":
        ops += [r(*state) if c0 else None, r(dirs, 3 * H) if peep else None]
    while ops[-1] is None:
        ops.pop()
    return ops


def rnn_case(name, kind, attrs, ops, n_results=3, constant_weights=False):
    attrs = dict(attrs, hidden_size=H)
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    attrs.setdefault("activations", (["Sigmoid", "Tanh", "Tanh"] if kind == "lstm" else ["Sigmoid", "Tanh"]) * dirs)
    names = ["X", "W", "R", "B", "seq", "h0", "c0", "P"]
    expected = recurrent(kind, *[], **{n: v for n, v in zip(names, ops)}, **attrs)[:n_results]
    if constant_weights:
        ops = [const(v) if j in (1, 2, 3) and v is not None else v for j, v in enumerate(ops)]
    return Case(name, kind, attrs, ops, expected, atol=1e-5)


CASES = [
    rnn_case("lstm_basic", "lstm", {}, operands("lstm"), constant_weights=True),
    rnn_case("lstm_all_inputs", "lstm", {}, operands("lstm", seq=True, h0=True, c0=True, peep=True)),
    rnn_case("lstm_reverse_seq", "lstm", dict(direction="reverse"), operands("lstm", seq=True), n_results=2),
    rnn_case("lstm_bidirectional", "lstm", dict(direction="bidirectional"),
             operands("lstm", dirs=2, seq=True, h0=True, c0=True, peep=True)),
    rnn_case("lstm_clip_peephole", "lstm", dict(clip=0.4), operands("lstm", h0=True, c0=True, peep=True)),
    rnn_case("lstm_input_forget", "lstm", dict(input_forget=1), operands("lstm", seq=True, c0=True, peep=True)),
    rnn_case("lstm_acts", "lstm", dict(activations=["LeakyRelu", "Tanh", "ScaledTanh"], activation_alpha=[0.3, 0.7],
                                       activation_beta=[1.5]), operands("lstm")),
    rnn_case("lstm_acts_bidi", "lstm", dict(
        direction="bidirectional", activations=["HardSigmoid", "Affine", "Elu", "Sigmoid", "Softsign", "Softplus"],
        activation_alpha=[0.3, 0.5], activation_beta=[0.4, -0.1]),
             operands("lstm", dirs=2)),
    rnn_case("lstm_layout1", "lstm", dict(direction="bidirectional", layout=1),
             operands("lstm", dirs=2, layout=1, seq=True, h0=True, c0=True)),
    rnn_case("lstm_no_bias", "lstm", {}, operands("lstm", bias=False), n_results=1),
    rnn_case("gru_basic", "gru", {}, operands("gru"), constant_weights=True),
    rnn_case("gru_lbr", "gru", dict(linear_before_reset=1), operands("gru", seq=True, h0=True)),
    rnn_case("gru_bidi_layout1", "gru", dict(direction="bidirectional", layout=1, linear_before_reset=1),
             operands("gru", dirs=2, layout=1, seq=True, h0=True)),
    rnn_case("gru_clip_acts", "gru", dict(clip=0.3, activations=["HardSigmoid", "LeakyRelu"],
                                          activation_alpha=[0.3, 0.2], activation_beta=[0.4]),
             operands("gru", h0=True)),
    rnn_case("gru_reverse_no_bias", "gru", dict(direction="reverse"), operands("gru", bias=False, seq=True),
             n_results=1),
    rnn_case("gru_more_acts", "gru", dict(direction="bidirectional",
                                          activations=["Sigmoid", "Relu", "ThresholdedRelu", "Softsign"],
                                          activation_alpha=[0.1]), operands("gru", dirs=2)),
]


results, test_rnn, test_rnn_sanitized = kernel_tests(CASES)


def _ort_run(kind, ops, attrs, n_results):
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper as oh
    names = [f"in{j}" if v is not None else "" for j, v in enumerate(ops)]
    node = oh.make_node(kind.upper(), names, [f"out{j}" for j in range(n_results)], **attrs)
    vis = [oh.make_tensor_value_info(n, oh.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in zip(names, ops)
           if v is not None]
    outs = [oh.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in node.output]
    m = oh.make_model(oh.make_graph([node], "g", vis, outs), opset_imports=[oh.make_opsetid("", 14)])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {n: v for n, v in zip(names, ops) if v is not None})


@pytest.mark.parametrize("c", [c for c in CASES if not c.attrs.get("layout")], ids=lambda c: c.name)
def test_numpy_model_matches_onnxruntime(c):
    ops = [a.data if isinstance(a, Arg) else a for a in c.operands]
    attrs = {k: v for k, v in c.attrs.items() if v != [] and not (k == "clip" and v == 0)}
    got = _ort_run(c.kind, ops, attrs, len(c.expected))
    for e, o in zip(c.expected, got):
        np.testing.assert_allclose(e, o, rtol=1e-4, atol=1e-5)


def test_numpy_model_matches_onnx_reference_layout1():
    """layout 1 (batch first) as onnx's reference reads it, on the defaults it implements."""
    ops = operands("lstm", dirs=2, layout=1, h0=True, c0=True)
    ref = onnx_ref("LSTM", ops, dict(hidden_size=H, direction="bidirectional", layout=1), n_outputs=3)
    for e, o in zip(recurrent("lstm", *ops, direction="bidirectional", layout=1), ref):
        np.testing.assert_allclose(e, o, rtol=1e-4, atol=1e-5)


def test_quantized_lstm_is_unsupported():
    x = Value("x", TensorType((T, N, I), "i8"))
    w, r = Value("w", TensorType((1, 4 * H, I), "f32")), Value("r", TensorType((1, 4 * H, H), "f32"))
    y = Value("y", TensorType((T, 1, N, H), "f32"))
    attrs = fill_defaults("lstm", dict(hidden_size=H, activations=["Sigmoid", "Tanh", "Tanh"]))
    with pytest.raises(Unsupported):
        select(Op("lstm", [x, w, r], [y], attrs, "l"))
