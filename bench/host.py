#!/usr/bin/env python3
"""Host latency of edgecc's generated C against onnxruntime (one thread), side by side, as ratios.

usage: python bench/host.py [--models DIR] [--reps N] [MODEL_STEM ...]
Each model is compiled with `--target host`, built by the acceptance harness (cbench.py: gcc -O2
-march=native) and timed over --reps runs (median); onnxruntime runs the same golden input with
intra_op_num_threads=1 (median of --reps). Prints one row per model and the geometric mean.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
STEMS = ["kws_int8", "kws_fp32", "vww_int8", "vww_fp32", "ic_int8", "ic_fp32", "ad_int8", "ad_fp32"]


def load_cbench(shared):
    spec = importlib.util.spec_from_file_location("cbench", os.path.join(shared, "tools", "cbench.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ort_latency_us(model, golden, reps):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    x = np.load(golden)["input"]
    feed = {sess.get_inputs()[0].name: x}
    sess.run(None, feed)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e6)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stems", nargs="*", default=STEMS)
    ap.add_argument("--models", default=os.path.join(SHARED, "models", "mlperf_tiny"))
    ap.add_argument("--shared", default=SHARED)
    ap.add_argument("--reps", type=int, default=50)
    a = ap.parse_args(argv)
    from edgecc.compiler.driver import compile as compile_model

    cbench = load_cbench(a.shared)
    rows, ratios = [], []
    for stem in a.stems:
        model, golden = os.path.join(a.models, stem + ".onnx"), os.path.join(a.models, stem + ".npz")
        with tempfile.TemporaryDirectory() as tmp:
            compile_model(model, target="host", outdir=os.path.join(tmp, "c"), emit="c")
            res = cbench.run("host", os.path.join(tmp, "c"), golden, "model", a.reps, [])
        ort_us = ort_latency_us(model, golden, a.reps)
        if not res.get("ok"):
            rows.append((stem, "FAILED", f"{ort_us:.1f}", "-", res.get("error", "")[:60]))
            continue
        ratio = res["us"] / ort_us
        ratios.append(ratio)
        rows.append((stem, f"{res['us']:.1f}", f"{ort_us:.1f}", f"{ratio:.2f}x", f"maxdiff {res['maxdiff']:g}"))
    geo = float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan")
    rows.append(("geomean", "", "", f"{geo:.2f}x", f"{len(ratios)}/{len(a.stems)} models"))
    head = ("model", "edgecc us", "onnxruntime us", "edgecc/ort", "check")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(5)]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
