"""calibrate: measure the real range of every float tensor on calibration data.

Runs the float graph in the IR interpreter once per calibration sample (ctx.options["calibration"]:
input name -> array [N, *shape]) and records, per float tensor, the interval its int8 codes will
cover, chosen by ctx.options["calibration_method"] (minmax, percentile, entropy: see
compiler/quantization/ranges.py). The graph is not changed; the result goes to
graph.meta["calibration"]:

    {"method": ..., "percentile": p (percentile only, else None), "samples": N,
     "ranges": {value name: [lo, hi]}, "minmax": {value name: [min, max]}}

The model's inputs and outputs always take their min/max: clipping an interface tensor would
saturate what the user feeds in or reads out (an input's range is often exact, e.g. [0, 1] pixels).

Why here in the pipeline: after fold_constants, fold_batchnorm and fuse, so that what is measured
is what will run (a conv's range is taken after its fused bias and relu, not before).
"""
from __future__ import annotations

from edgecc.compiler.quantization import DEFAULT_METHOD, DEFAULT_PERCENTILE, METHODS
from edgecc.compiler.quantization.data import count
from edgecc.compiler.quantization.ranges import Histogram, MinMax
from edgecc.compiler.quantization.trace import each_sample, trace
from edgecc.ir.errors import EdgeccError

from . import register


def float_tensors(graph) -> list:
    """The tensors quantization may give int8 codes: float inputs and float op results."""
    out = [v for v in graph.inputs if v.type.dtype == "f32"]
    out += [r for op in graph.ops for r in op.results if r.type.dtype == "f32"]
    return out


def _check(graph, opts):
    if not opts.get("calibration"):
        raise EdgeccError("quantization needs calibration data (--calibration DATA.npz)")
    method = opts.get("calibration_method", DEFAULT_METHOD)
    if method not in METHODS:
        raise EdgeccError(f"unknown calibration method '{method}' (known: {', '.join(METHODS)})")
    # quantized weights alone (weight-only quantization) are fine: quantize_int8 reads their real values
    quantized = [v for v in graph.values() if v.type.quant is not None and not v.is_const]
    if quantized:
        raise EdgeccError(f"the model is quantized already (%{quantized[0].name} is "
                          f"{quantized[0].type.dtype}); --quantize int8 takes a float model")
    return method


@register("calibrate")
def run(graph, ctx):
    opts = ctx.options
    method = _check(graph, opts)
    p = float(opts.get("percentile", DEFAULT_PERCENTILE))
    cal, progress = opts["calibration"], opts.get("progress")
    tensors = float_tensors(graph)
    keep = set(tensors)
    seen = MinMax()
    for xs in each_sample(cal, graph, progress, "calibrating"):
        env = trace(graph, xs, keep)
        for v in tensors:
            seen.add(v.name, env[v])
    ranges = {v.name: list(seen.range(v.name)) for v in tensors}
    interface = {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
    inner = [v for v in tensors if v.name not in interface]
    if method != "minmax" and inner:
        hists = {v.name: Histogram(*seen.range(v.name), absolute=method == "entropy") for v in inner}
        for xs in each_sample(cal, graph, progress, "histograms"):
            env = trace(graph, xs, set(inner))
            for v in inner:
                hists[v.name].add(env[v])
        for name, h in hists.items():
            ranges[name] = list(h.percentile_range(p) if method == "percentile" else h.entropy_range())
    graph.meta["calibration"] = {"method": method, "percentile": p if method == "percentile" else None,
                                 "samples": count(cal),
                                 "ranges": ranges, "minmax": {v.name: list(seen.range(v.name)) for v in tensors}}
    return graph
