"""Lifting rules for the recurrent layers LSTM and GRU.

Operands keep ONNX's positions (None where an optional input is absent); activations get their
ONNX defaults spelled out per direction. A result the model does not ask for (say Y when only
Y_h is used) still gets a typed placeholder so later results keep their positions.
"""
from __future__ import annotations

from .context import NodeView, lifts

DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


@lifts("LSTM", "GRU")
def rnn(n: NodeView):
    direction = n.choice("direction", "forward", ("forward", "reverse", "bidirectional"))
    dirs = 2 if direction == "bidirectional" else 1
    hidden = int(n.attr("hidden_size", n.in_shape(2)[-1]))
    layout = int(n.attr("layout", 0))
    attrs = {
        "direction": direction, "hidden_size": hidden, "layout": layout,
        "activations": n.attr("activations", DEFAULT_ACTIVATIONS[n.op_type] * dirs),
        "activation_alpha": [float(a) for a in n.attr("activation_alpha", [])],
        "activation_beta": [float(b) for b in n.attr("activation_beta", [])],
        "clip": float(n.attr("clip", 0.0)),
    }
    if n.op_type == "LSTM":
        attrs["input_forget"] = int(n.attr("input_forget", 0))
    else:
        attrs["linear_before_reset"] = int(n.attr("linear_before_reset", 0))
    x = n.in_type(0)
    seq, batch = (x.shape[0], x.shape[1]) if layout == 0 else (x.shape[1], x.shape[0])
    y = (seq, dirs, batch, hidden) if layout == 0 else (batch, seq, dirs, hidden)
    state = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
    shapes = [y, state, state][: max(n.n_outputs, 1)]
    types = [n.out_type(i) if n.has_output(i) else x.with_(shape=s) for i, s in enumerate(shapes)]
    n.emit(n.op_type.lower(), n.inputs(), attrs, types=types)
