"""--weights auto: 4-bit or int8 weights per layer, to fit the flash budget with the least loss.

Two measurements per candidate layer (a conv or fully connected layer with constant weights):

  - its sensitivity: the model quantized with int8 weights everywhere but this layer, whose weights are
    4-bit, run in the interpreter on the calibration samples; the loss is the end-to-end noise power over
    the float model's signal power (summed over the outputs), less that of int8 weights everywhere;
  - the flash it saves: the model lowered as the backend will emit it, with this layer 4-bit, against
    int8 everywhere (the backend's flash_bytes: data exact, code from the target's measured sizes).

Then, from int8 everywhere, the layers go 4-bit in the order of least loss per byte saved until the
whole model's estimate fits the budget (`--flash`, else the target's flash); layers whose 4-bit form
turns out not to be needed after all go back to int8, the most sensitive first. Layers the int8 scheme
leaves in float stay float in every variant. A budget that 4-bit weights everywhere do not meet is
refused with the least that works.
"""
from __future__ import annotations

import copy

import numpy as np

from edgecc.ir.errors import EdgeccError
from edgecc.ir.interp import to_stored

from .trace import each_sample, real, trace


def _noise(float_graph, graph, calibration, progress, label) -> float:
    """End-to-end noise power over signal power of `graph` against `float_graph` on the samples."""
    signal = noise = 0.0
    for xs in each_sample(calibration, float_graph, progress, label):
        ref = trace(float_graph, xs, set(float_graph.outputs))
        got = trace(graph, [to_stored(v.type, x) if v.type.quant is not None else x
                            for v, x in zip(graph.inputs, xs)], set(graph.outputs))
        for fo, qo in zip(float_graph.outputs, graph.outputs):
            r, q = real(fo, ref[fo]), real(qo, got[qo])
            signal += float(np.sum(r * r))
            noise += float(np.sum((r - q) ** 2))
    return noise / signal if signal else 0.0


def _flash(graph, ctx) -> int:
    """The estimated flash of a quantized graph once lowered for ctx's target and backend."""
    from edgecc.compiler.pipeline import lower, quantizing

    estimate = getattr(ctx.backend, "flash_bytes", None)
    g = copy.deepcopy(graph)
    g.meta = {}
    _, rest = quantizing(ctx.backend.pipeline())
    options = {k: v for k, v in ctx.options.items() if k in ("sram", "partition", "sparsity", "file")}
    g = lower(g, ctx.target, options=options, backend=ctx.backend, passes=rest)
    if estimate is None:
        return int(sum(c.type.nbytes for c in g.constants))
    return int(estimate(g)["total"])


def _db(ratio: float):
    return None if ratio <= 0 else round(float(-10.0 * np.log10(ratio)), 2)


def budget_of(ctx) -> int:
    return int(ctx.options.get("flash") or getattr(ctx.target, "flash", 0) or 0)


def choose_precisions(float_graph, quantized, candidates: dict, ctx) -> dict:
    """Which candidate layers get 4-bit weights; candidates: {weight constant name: layer name}. quantized(four)
    is the float graph quantized with 4-bit weights for the weight names in the set `four`. The choice and its
    figures: {"budget", "flash", "flash_int8", "flash_int4", "sqnr_db_int8", "four": [weight names], "layers":
    [{"layer", "weights", "bits", "sqnr_db", "saves"}]} (sqnr_db: end to end over all the outputs, with that
    layer alone 4-bit, sqnr_db_int8 with none; saves: the flash its 4-bit weights save)."""
    opts = ctx.options
    cal, progress = opts["calibration"], opts.get("progress")
    budget = budget_of(ctx)
    base = quantized(set())
    flash_int8 = _flash(base, ctx)
    noise_int8 = _noise(float_graph, base, cal, progress, "sensitivity")
    rows = {}
    for name in candidates:
        g = quantized({name})
        rows[name] = {"layer": candidates[name], "weights": name,
                      "loss": _noise(float_graph, g, cal, progress, "sensitivity") - noise_int8,
                      "saves": flash_int8 - _flash(g, ctx)}
        rows[name]["sqnr_db"] = _db(noise_int8 + rows[name]["loss"])
    everything = set(candidates)
    flash_int4 = _flash(quantized(everything), ctx) if candidates else flash_int8
    if budget and flash_int4 > budget:
        raise EdgeccError(f"needs at least {flash_int4:,} bytes of flash with 4-bit weights everywhere (int8: "
                          f"{flash_int8:,}); --flash {budget:,} given", file=opts.get("file", ""))
    four, flash = set(), flash_int8
    savers = sorted((n for n in candidates if rows[n]["saves"] > 0),
                    key=lambda n: (max(rows[n]["loss"], 0.0) / rows[n]["saves"], n))
    for name in savers:
        if not budget or flash <= budget:
            break
        four.add(name)
        flash = _flash(quantized(four), ctx)
    if budget and flash > budget:  # the savers alone were not enough: the rest too
        four, flash = everything, flash_int4
    for name in sorted(four, key=lambda n: (-rows[n]["loss"], n)):  # back to int8 where the budget allows
        trial = _flash(quantized(four - {name}), ctx)
        if trial <= budget:
            four, flash = four - {name}, trial
    layers = [dict(rows[n], bits=4 if n in four else 8) for n in candidates]
    for r in layers:
        r.pop("loss")
    return {"budget": budget, "flash": flash, "flash_int8": flash_int8, "flash_int4": flash_int4,
            "sqnr_db_int8": _db(noise_int8), "four": sorted(four), "layers": layers}
