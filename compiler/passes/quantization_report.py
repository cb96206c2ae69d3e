"""quantization_report: how much each layer lost to int8, measured, into graph.meta["quantization"].

Runs the float graph quantize_int8 started from (graph.meta["quantize_int8"]["float_graph"]) and
the quantized graph side by side in the IR interpreter on every calibration sample, and compares
every layer's output (its real numbers: codes dequantized) with the float model's:

    SQNR = 10 log10( sum float^2 / sum (float - quantized)^2 )   in dB, over all samples

Errors accumulate along the graph (layer k sees the int8 outputs of layers 1..k-1), so the column
reads as "how far from the float model the network is by here"; the end-to-end figure is the same
for the model's outputs. The report also says which layers stayed float and why, and the weight
bytes before and after. The graph is not changed; the float reference is dropped from the meta.

    {"scheme": ..., "calibration": {...}, "io": "float" | "int8", "weights": "int8" | "int4" | "auto",
     "auto": None | the choice of --weights auto (compiler/quantization/mixed.py),
     "end_to_end": [{"output", "sqnr_db", "exact"}],
     "layers": [{"name", "op", "output", "precision", "sqnr_db", "exact"}],
     "float_layers": [{"name", "op", "reason"}], "weight_bytes": {"float": n, "quantized": n}}

precision: "int8", "int4" (4-bit weights, int8 activations) or "float".

sqnr_db is null where it is undefined: the layer is exact (no noise at all, "exact": true) or
its float output is all zeros.
"""
from __future__ import annotations

import math

import numpy as np

from edgecc.compiler.quantization.trace import each_sample, real, trace
from edgecc.ir.interp import to_stored

from . import register

SCHEME = "int8: activations asymmetric per tensor, weights symmetric per output channel, int32 bias"


class _Noise:
    """Signal and noise power of one tensor, summed over the samples."""

    def __init__(self):
        self.signal = 0.0
        self.noise = 0.0

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        self.signal += float(np.sum(ref * ref))
        self.noise += float(np.sum((ref - got) ** 2))

    def db(self):
        """SQNR in dB; None when it is undefined: no noise (exact) or no signal."""
        if self.noise == 0.0 or self.signal == 0.0:
            return None
        return round(10.0 * math.log10(self.signal / self.noise), 2)

    def row(self) -> dict:
        return {"sqnr_db": self.db(), "exact": self.noise == 0.0}


def _precision(op) -> str:
    """int4: 4-bit weights (and int8 activations); int8; float."""
    if any(v.type.dtype == "i4" for v in op.inputs()):
        return "int4"
    return "int8" if any(v.type.quant is not None for v in op.inputs() + op.results) else "float"


def _weight_bytes(graph) -> int:
    return int(sum(c.type.nbytes for c in graph.constants))


def measure(float_graph, graph, calibration, progress=None):
    """(per-layer rows, end-to-end rows) comparing `graph` with `float_graph` on the samples."""
    by_name = {v.name: v for v in graph.values()}
    layers = [(op, r, by_name[r.name]) for op in float_graph.ops for r in op.results
              if r.type.dtype == "f32" and r.name in by_name]
    noise = {r: _Noise() for _, r, _ in layers}
    ends = [_Noise() for _ in graph.outputs]
    keep_f = {r for _, r, _ in layers} | set(float_graph.outputs)
    keep_q = {q for _, _, q in layers} | set(graph.outputs)
    for xs in each_sample(calibration, float_graph, progress, "measuring"):
        env_f = trace(float_graph, xs, keep_f)
        env_q = trace(graph, [to_stored(v.type, x) if v.type.quant is not None else x
                              for v, x in zip(graph.inputs, xs)], keep_q)
        for _, r, q in layers:
            noise[r].add(real(r, env_f[r]), real(q, env_q[q]))
        for n, fo, qo in zip(ends, float_graph.outputs, graph.outputs):
            n.add(real(fo, env_f[fo]), real(qo, env_q[qo]))
    producers = {r: op for op in graph.ops for r in op.results}
    rows = [{"name": op.name, "op": op.kind, "output": r.name,
             "precision": _precision(producers[q]) if q in producers else "float", **noise[r].row()}
            for op, r, q in layers]
    end = [{"output": fo.name, **n.row()} for n, fo in zip(ends, float_graph.outputs)]
    return rows, end


@register("quantization_report")
def run(graph, ctx):
    info = graph.meta.get("quantize_int8")
    if info is None or "float_graph" not in info:
        raise ValueError("quantization_report needs graph.meta['quantize_int8']: run quantize_int8 first")
    float_graph = info.pop("float_graph")
    cal = graph.meta.get("calibration", {})
    rows, end = measure(float_graph, graph, ctx.options["calibration"], ctx.options.get("progress"))
    graph.meta["quantization"] = {
        "scheme": SCHEME, "io": info["io"], "weights": info.get("weights", "int8"), "auto": info.get("auto"),
        "calibration": {k: cal.get(k) for k in ("method", "percentile", "samples")},
        "end_to_end": end, "layers": rows, "float_layers": info["float_layers"],
        "weight_bytes": {"float": _weight_bytes(float_graph), "quantized": _weight_bytes(graph)}}
    return graph
