#!/usr/bin/env python3
"""Delegate partitions per model and target: single-cut (the Edge TPU compiler's rule) side by side
with edgecc's cost model.

usage: python bench/delegate.py [--shared DIR] [--targets edgetpu,ethos-u55] [--no-zoo]

For each model (the MLPerf Tiny int8 models, and the test zoo's QDQ models unless --no-zoo) and each
delegate target: the number of partitions, the % of MACs on the accelerator, the bytes crossing the
accelerator boundary per inference and the estimated time of one inference (the target file's cost
model: accelerator and CPU rates, transfer rate, invocation overhead), for --partition single-cut and
--partition cost, and the ratios cost / single-cut. Estimates, not measurements: no accelerator here.
For a target whose partitions Vela compiles (ethos-u55, Vela installed), the last columns set the cost
model's accelerator time for the cost plan's partitions beside Vela's own estimate of them (its cycles
at its clock; transfers and invocation overhead are not in Vela's figure).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
MLPERF = ["kws_int8", "vww_int8", "ic_int8", "ad_int8"]
ZOO = ["cnn_nchw_qdq", "conv1d_qdq", "mobile_hswish_resize_qdq"]


def partitioned(model: str, target: str, mode: str):
    """The graph after the target's passes up to partition, in `mode`."""
    from edgecc.backends.registry import backend_for, get_target
    from edgecc.compiler.driver import load
    from edgecc.compiler.pipeline import lower

    t = get_target(target)
    backend = backend_for(t)
    passes = backend.pipeline()
    passes = passes[:passes.index("partition") + 1]
    return lower(load(model), t, options={"partition": mode}, backend=backend, passes=passes), t


def figures(model: str, target: str, mode: str) -> dict:
    from edgecc.compiler.capabilities import read_capabilities
    from edgecc.compiler.passes.partition import estimate
    from edgecc.ir.analysis import macs

    g, t = partitioned(model, target, mode)
    costs = read_capabilities(t.accelerator, t.path).costs
    parts = [op for op in g.ops if op.kind == "partition"]
    total = sum(macs(op) for op in g.ops)
    on_accel = sum(macs(op) for op in parts)
    moved = sum(v.type.nbytes for op in parts for v in list(op.operands) + list(op.results))
    seconds = sum(p["accel_seconds"] for p in g.meta["partition"]["partitions"])
    seconds += sum(estimate([op], g, costs)[1] for op in g.ops if op.kind != "partition")
    accel_us = sum(p["accel_seconds"] for p in g.meta["partition"]["partitions"]) * 1e6
    return dict(parts=len(parts), pct=100.0 * on_accel / total if total else 0.0, moved=moved, us=seconds * 1e6,
                accel_us=accel_us, vela_us=vela_us(parts, t))


def vela_us(parts, target):
    """Vela's estimate of the partitions' NPU time (us), None when the target's compiler is not Vela or
    Vela is not installed."""
    from edgecc.backends.delegate.tflite_writer import tflite_model
    from edgecc.backends.delegate.vela import compile_partition_cached, vela_version
    from edgecc.compiler.capabilities import read_capabilities

    caps = read_capabilities(target.accelerator, target.path)
    if caps.compiler != "vela" or vela_version() is None:
        return None
    opts = caps.compiler_options
    total = 0.0
    for op in parts:
        npu = compile_partition_cached(tflite_model(op.regions[0]), opts.get("accelerator_config", "ethos-u55-128"),
                                       opts.get("system_config"), opts.get("memory_mode"))
        total += npu.cycles / npu.clock_hz * 1e6
    return total


def zoo_models(outdir: str) -> dict:
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "models"))
    import make_models

    return {k: str(v) for k, v in make_models.build_all(outdir, ZOO, verbose=False).items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("EDGECC_SHARED", SHARED))
    ap.add_argument("--targets", default="edgetpu,ethos-u55")
    ap.add_argument("--no-zoo", action="store_true")
    args = ap.parse_args(argv)
    from edgecc.backends.registry import targets

    models = {s: os.path.join(args.shared, "models", "mlperf_tiny", f"{s}.onnx") for s in MLPERF}
    models = {k: v for k, v in models.items() if os.path.exists(v)}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_zoo:
            models.update(zoo_models(tmp))
        rows = [("model", "target", "parts 1-cut", "parts cost", "% MACs 1-cut", "% MACs cost",
                 "bytes 1-cut", "bytes cost", "est us 1-cut", "est us cost", "time cost/1-cut",
                 "accel us cost", "Vela us cost")]
        for target in args.targets.split(","):
            if target not in targets():
                print(f"(target {target} is not installed: skipped)", file=sys.stderr)
                continue
            for name, path in models.items():
                a, b = figures(path, target, "single-cut"), figures(path, target, "cost")
                rows.append((name, target, str(a["parts"]), str(b["parts"]), f"{a['pct']:.1f}", f"{b['pct']:.1f}",
                             f"{a['moved']:,}", f"{b['moved']:,}", f"{a['us']:.1f}", f"{b['us']:.1f}",
                             f"{b['us'] / a['us']:.2f}x" if a["us"] else "-", f"{b['accel_us']:.1f}",
                             "-" if b["vela_us"] is None else f"{b['vela_us']:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
