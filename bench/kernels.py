#!/usr/bin/env python3
"""Float32 compute kernels of the C backend against onnxruntime (one thread) and numpy, on the
layer shapes of the models we are measured on (MobileNet-V1 0.25 96x96, ResNet-8, DS-CNN, the
640-128-...-640 MLP).

usage: python bench/kernels.py [--reps N] [--filter TEXT]
Each case is one op in a graph of its own: emitted, built with gcc -O2 -march=native -std=c99 (as
the acceptance harness builds), timed in a loop. onnxruntime runs the same op
as an ONNX node with intra_op_num_threads=1; its figure subtracts the run() overhead of a one-node
Identity model, so it approximates the kernel alone. Times are the fastest batch (the host is
shared; the minimum is the least disturbed figure). Prints microseconds, GFLOP/s (2 x MACs) and
our time over onnxruntime's (< 1 is faster), then the geometric mean of that ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgecc.backends.registry import backend_for
from edgecc.compiler.pipeline import lower
from edgecc.ir import Graph, Op, TensorType, Value, verify
from edgecc.ir.analysis import macs
from edgecc.ir.ops import fill_defaults

TIMER_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 21, batch = 1;
  double best[256], t0;
  model_invoke();
  for (;;) { t0 = now(); for (int i = 0; i < batch; i++) model_invoke(); if (now() - t0 > 2e-3) break; batch *= 2; }
  if (reps > 256) reps = 256;
  for (int r = 0; r < reps; r++) {
    t0 = now(); for (int i = 0; i < batch; i++) model_invoke(); best[r] = (now() - t0) / batch;
  }
  for (int i = 1; i < reps; i++) if (best[i] < best[0]) best[0] = best[i];
  printf("%.3f\n", best[0] * 1e6);
  return 0;
}
"""


class Case:
    """One op: IR (kind, attrs, operand arrays, constant flags) and its ONNX twin."""

    def __init__(self, label, kind, attrs, operands, consts, onnx_node, result_shape, ref=None):
        self.label, self.kind, self.attrs = label, kind, fill_defaults(kind, attrs)
        self.operands, self.consts, self.onnx_node, self.result_shape = operands, consts, onnx_node, result_shape
        self.ref = ref  # numpy callable over the runtime operands, or None

    def graph(self):
        ins, consts, operands = [], [], []
        for j, (a, c) in enumerate(zip(self.operands, self.consts)):
            if a is None:
                operands.append(None)
                continue
            v = Value(f"x{j}", TensorType(a.shape, "f32"), a if c else None)
            (consts if c else ins).append(v)
            operands.append(v)
        y = Value("y", TensorType(tuple(self.result_shape), "f32"))
        op = Op(self.kind, operands, [y], self.attrs, "layer")
        g = Graph("bench", ins, [y], [op], consts)
        verify(g)
        return g, op


rng = np.random.default_rng(0)


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def conv_case(label, hw, cin, cout, k, stride=1, group=1, channels_last=1, act="relu"):
    pad = k // 2
    x_cf = (1, cin, hw, hw)
    w_cf = rand(cout, cin // group, k, k)
    b = rand(cout)
    out = (hw + 2 * pad - k) // stride + 1
    attrs = dict(strides=[stride] * 2, pads=[pad] * 4, dilations=[1, 1], group=group, activation=act,
                 channels_last=channels_last)
    x = rand(*x_cf)
    if channels_last:
        x, w = x.transpose(0, 2, 3, 1).copy(), w_cf.transpose(0, 2, 3, 1).copy()
        y = (1, out, out, cout)
    else:
        w, y = w_cf, (1, cout, out, out)
    node = (helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=[stride] * 2, pads=[pad] * 4, group=group),
            [numpy_helper.from_array(w_cf, "w"), numpy_helper.from_array(b, "b")], x_cf, act)
    return Case(label, "conv", attrs, [x, w, b], [False, True, True], node, y)


def fc_case(label, k, n, rows=1):
    x, w, b = rand(rows, k), rand(n, k), rand(n)
    node = (helper.make_node("Gemm", ["x", "w", "b"], ["c"], transB=1),
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")], (rows, k), "relu")
    return Case(label, "fully_connected", dict(activation="relu"), [x, w, b], [False, True, True], node, (rows, n),
                ref=lambda x_: np.maximum(x_ @ w.T + b, 0))


def pool_case(label, kind, hw, c, k, stride, channels_last=1):
    x_cf = (1, c, hw, hw)
    out = (hw - k) // stride + 1
    attrs = dict(kernel_shape=[k, k], strides=[stride] * 2, pads=[0] * 4, channels_last=channels_last)
    if kind == "max_pool":
        attrs["dilations"] = [1, 1]
    x = rand(*x_cf)
    onnx_kind = {"max_pool": "MaxPool", "average_pool": "AveragePool"}[kind]
    node = (helper.make_node(onnx_kind, ["x"], ["c"], kernel_shape=[k, k], strides=[stride] * 2), [], x_cf, "none")
    if channels_last:
        x, y = x.transpose(0, 2, 3, 1).copy(), (1, out, out, c)
    else:
        y = (1, c, out, out)
    return Case(label, kind, attrs, [x], [False], node, y)


def softmax_case(label, rows, n):
    x = rand(rows, n)
    node = (helper.make_node("Softmax", ["x"], ["c"], axis=-1), [], (rows, n), "none")
    return Case(label, "softmax", dict(axis=1), [x], [False], node, (rows, n))


CASES = [
    conv_case("conv 3x3 48x48x8->16", 48, 8, 16, 3),
    conv_case("conv 1x1 24x24x32->64", 24, 32, 64, 1),
    conv_case("dw 3x3 48x48x32", 48, 32, 32, 3, group=32),
    fc_case("fc 640->128", 640, 128),
    conv_case("conv 3x3/2 96x96x3->8 (vww stem)", 96, 3, 8, 3, stride=2),
    conv_case("dw 3x3/2 48x48x16", 48, 16, 16, 3, stride=2, group=16),
    conv_case("conv 1x1 12x12x64->128", 12, 64, 128, 1),
    conv_case("dw 3x3 6x6x128", 6, 128, 128, 3, group=128),
    conv_case("conv 1x1 3x3x256->256", 3, 256, 256, 1),
    conv_case("conv 3x3 32x32x16->16 (resnet8)", 32, 16, 16, 3),
    conv_case("conv 3x3/2 16x16x32->64 (resnet8)", 16, 32, 64, 3, stride=2),
    conv_case("conv 3x3 48x48x8->16 NCHW", 48, 8, 16, 3, channels_last=0),
    conv_case("dw 3x3 48x48x32 NCHW", 48, 32, 32, 3, group=32, channels_last=0),
    fc_case("fc 128->128", 128, 128),
    fc_case("fc 128->8", 128, 8),
    fc_case("fc 640->128 x16 rows", 640, 128, rows=16),
    pool_case("avgpool 3x3 3x3x256 (vww head)", "average_pool", 3, 256, 3, 1),
    pool_case("maxpool 2x2/2 32x32x16", "max_pool", 32, 16, 2, 2),
    softmax_case("softmax 1x12", 1, 12),
]


def time_c(case, reps, workdir):
    g, op = case.graph()
    g = lower(g, "host", passes=["memory_plan"])
    out = os.path.join(workdir, "c")
    backend_for("host").emit(g, out)
    with open(os.path.join(workdir, "main.c"), "w") as f:
        f.write(TIMER_MAIN)
    exe = os.path.join(workdir, "bench")
    subprocess.run(["gcc", "-O2", "-march=native", "-std=c99", "-D_POSIX_C_SOURCE=199309L", f"-I{out}",
                    os.path.join(out, "model.c"), os.path.join(workdir, "main.c"), "-o", exe, "-lm"], check=True)
    us = float(subprocess.run([exe, str(reps)], capture_output=True, text=True, check=True).stdout)
    return us, macs(op)


def time_ort(case, reps, tmpdir):
    """onnxruntime, one thread, the NCHW ONNX node (+ Relu as a node: ORT fuses it itself): the
    fastest run's summed node kernel times from ORT's profiler (1 us resolution), so that the
    Python call overhead of run() does not count."""
    import onnxruntime as ort
    node, inits, x_shape, act = case.onnx_node
    nodes = [node]
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    else:
        node.output[0] = "y"
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tmpdir, "ort")
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = rand(*x_shape)
    runs = 10 * reps
    for _ in range(runs):
        sess.run(None, {"x": x})
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    runs_ts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    per_run = np.zeros(len(runs_ts))
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_run[max(0, np.searchsorted(runs_ts, e["ts"], side="right") - 1)] += e["dur"]
    return float(np.min(per_run[1:]))


def _fastest_us(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(20):
            fn()
        times.append((time.perf_counter() - t0) / 20 * 1e6)
    return float(np.min(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=31)
    ap.add_argument("--filter", default="")
    args = ap.parse_args(argv)
    print(f"{'case':38} {'edgecc us':>10} {'GFLOP/s':>8} {'ort us':>8} {'GFLOP/s':>8} {'numpy us':>9} {'ratio':>6}")
    ratios = []
    for case in CASES:
        if args.filter not in case.label:
            continue
        with tempfile.TemporaryDirectory(prefix="edgecc-bench-") as d:
            try:
                us, n_macs = time_c(case, args.reps, d)
            except Exception as e:  # a kernel that does not build yet is a row, not a crash
                print(f"{case.label:38} {type(e).__name__}: {str(e)[:80]}")
                continue
            ort_us = max(time_ort(case, args.reps, d), 0.5)  # its profiler counts whole microseconds
        np_us = ""
        if case.ref is not None:
            x = case.operands[0]
            np_us = f"{_fastest_us(lambda: case.ref(x), args.reps):9.1f}"
        ratio = us / ort_us
        ratios.append(ratio)
        print(f"{case.label:38} {us:10.2f} {2 * n_macs / us * 1e-3:8.2f} {ort_us:8.2f} "
              f"{2 * n_macs / ort_us * 1e-3:8.2f} {np_us:>9} {ratio:6.2f}")
    if ratios:
        print(f"geometric mean of edgecc / onnxruntime: {float(np.exp(np.mean(np.log(ratios)))):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
