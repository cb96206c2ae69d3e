"""`edgecc verify`: compile a model, run the generated C, run onnxruntime, compare per output.

The C runs where the target says: built with the system C compiler on the host (`host`), or
cross-compiled and run in the target's emulator (the Cortex-M targets: QEMU, see
backends/c/emulator.py), which also reports instructions per inference, flash and RAM.

Tolerances (the bar our users hold us to): float outputs within 1e-3 of the output's range;
integer outputs within 1 LSB; float outputs of a model quantized inside within 2% of the range.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from edgecc.ir.errors import EdgeccError

FLOAT_RTOL = 1e-3
QUANT_FLOAT_RTOL = 0.02
INT_LSB = 1


@dataclass
class OutputCheck:
    name: str
    dtype: str
    shape: tuple
    max_diff: float
    limit: float
    unit: str  # "LSB" or "abs"

    @property
    def ok(self) -> bool:
        return self.max_diff <= self.limit


def load_inputs(data_path, graph, seed=0) -> list:
    """Inputs from an .npz (arrays named after the graph inputs, or 'input*' keys in sorted order), or
    seeded random ones: standard normal for float, uniform over the range for integers."""
    if data_path:
        d = np.load(data_path)
        names = [v.name for v in graph.inputs]
        if all(n in d.files for n in names):
            arrays = [d[n] for n in names]
        else:
            keys = sorted(k for k in d.files if k.startswith("input"))
            if len(keys) != len(names):
                raise EdgeccError(f"{data_path}: {len(keys)} inputs in the file, the model takes {len(names)} "
                                  f"({', '.join(names)})")
            arrays = [d[k] for k in keys]
        out = []
        for v, a in zip(graph.inputs, arrays):
            if a.size != v.type.size or a.dtype != v.type.np_dtype:
                raise EdgeccError(f"{data_path}: input '{v.name}' is {a.dtype}{list(a.shape)}, "
                                  f"the model takes {v.type.np_dtype}{list(v.type.shape)}")
            out.append(a.reshape(v.type.shape))
        return out
    rng = np.random.default_rng(seed)
    out = []
    for v in graph.inputs:
        dt = v.type.np_dtype
        if dt.kind == "f":
            out.append(rng.standard_normal(v.type.shape).astype(dt))
        elif dt == np.bool_:
            out.append(rng.integers(0, 2, v.type.shape).astype(dt))
        else:
            info = np.iinfo(dt)
            out.append(rng.integers(max(info.min, -128), min(info.max, 127) + 1, v.type.shape).astype(dt))
    return out


def onnxruntime_outputs(model_path: str, graph, inputs: list) -> list:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise EdgeccError("verify needs onnxruntime as the reference: pip install onnxruntime") from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    try:
        sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
        feed = {i.name: a.reshape([d if isinstance(d, int) else a.shape[k] for k, d in enumerate(i.shape)])
                for i, a in zip(sess.get_inputs(), inputs)}
        return sess.run(None, feed)
    except Exception as e:  # onnxruntime's errors derive from Exception alone
        # a model edgecc compiles that the reference refuses (e.g. two nodes of one name): nothing to compare
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgeccError(f"{model_path}: onnxruntime, the reference, cannot run the model: {reason}") from None


def compare(graph, got: list, want: list) -> list:
    quantized_inside = any(v.type.quant is not None for v in graph.values())
    checks = []
    for v, y, ref in zip(graph.outputs, got, want):
        y64, r64 = y.astype(np.float64).reshape(-1), np.asarray(ref).astype(np.float64).reshape(-1)
        diff = float(np.max(np.abs(y64 - r64))) if y64.size else 0.0
        if v.type.dtype == "f32":
            # the output's range; a constant output is measured against its magnitude
            span = float(r64.max() - r64.min() or np.max(np.abs(r64))) if r64.size else 1.0
            rtol = QUANT_FLOAT_RTOL if quantized_inside else FLOAT_RTOL
            checks.append(OutputCheck(v.name, "f32", v.type.shape, diff, rtol * max(span, 1e-6), "abs"))
        else:
            checks.append(OutputCheck(v.name, v.type.dtype, v.type.shape, diff, INT_LSB, "LSB"))
    return checks


def format_table(checks: list) -> str:
    rows = [("output", "dtype", "shape", "max diff", "limit", "result")]
    for c in checks:
        rows.append((c.name[:40], c.dtype, "x".join(map(str, c.shape)), f"{c.max_diff:.3g} {c.unit}",
                     f"{c.limit:.3g} {c.unit}", "ok" if c.ok else "MISMATCH"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def format_figures(run, total_macs: int, target) -> str:
    """Instructions, flash and RAM of one emulated inference, next to the reference board's sizes."""
    per_mac = f"{run.insns / total_macs:.2f} per MAC over {total_macs:,} MACs" if total_macs else "no MACs"
    sec = run.sections
    text = sum(n for k, n in sec.items() if k.startswith(".text"))
    rodata = sum(n for k, n in sec.items() if k.startswith(".rodata"))
    data = sum(n for k, n in sec.items() if k.startswith(".data"))

    def of_board(n, size):
        if not size:
            return ""
        return f" of {size:,} on the board" + ("" if n <= size else "  EXCEEDS THE BOARD")

    rows = [("instructions per inference", f"{run.insns:,} ({per_mac}; {target.name} in QEMU "
                                           f"{target.emulator['machine']})"),
            ("flash", f"{run.flash:,} bytes (.text {text:,} + .rodata {rodata:,} + .data {data:,})"
                      + of_board(run.flash, target.flash)),
            ("RAM", f"{run.ram:,} bytes (.data+.bss {run.static_ram:,} + stack {run.stack:,})"
                    + of_board(run.ram, target.sram))]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def verify(model_path: str, target: str = "host", data: str | None = None, input_shapes=None,
           name: str = "model", out=sys.stdout, optimize: str = "balanced", partition: str | None = None,
           sparsity: str = "on", progress=None, limits=None) -> bool:
    """Compile, run the C (on the host with the system C compiler, or in the target's emulator), compare
    with onnxruntime; print the table (and, on an emulator, instructions, flash and RAM); True when all
    outputs match. `progress(label, done, total)`: hears of the long steps (compiler/progress.py)."""
    from edgecc.backends.registry import get_target
    from edgecc.backends.c import emulator
    from edgecc.backends.c.runner import build_and_run
    from edgecc.ir.analysis import macs

    from .driver import compile as compile_model

    if not model_path.endswith(".onnx"):
        raise EdgeccError(f"{model_path}: verify compares with onnxruntime, so it takes an .onnx model")
    t = get_target(target)
    if not t.emulator and t.toolchain:
        raise EdgeccError(f"target '{t.name}' has no emulator to run its code on (its target file declares no "
                          f"[emulator] table)")
    if t.emulator:
        why = emulator.missing(t)
        if why:
            raise EdgeccError(f"verify runs {t.name} code in QEMU, but {why}")
    work = tempfile.mkdtemp(prefix="edgecc-verify-")
    run, partition_checks = None, []
    try:
        art = compile_model(model_path, target=target, outdir=os.path.join(work, "c"), name=name, emit="c",
                            input_shapes=input_shapes, optimize=optimize, partition=partition, sparsity=sparsity,
                            progress=progress, limits=limits)
        graph = art.graph
        inputs = load_inputs(data, graph)
        if t.emulator:
            run = emulator.build_and_run(os.path.join(work, "c"), graph, inputs, t, name=name, progress=progress)
            got = run.outputs
        else:
            got = build_and_run(os.path.join(work, "c"), graph, inputs, name=name)
        want = onnxruntime_outputs(model_path, graph, inputs)
        if t.accelerator:  # a delegate target: every partition's TFLite in LiteRT too
            partition_checks = _check_partitions(graph, inputs, os.path.join(work, "c"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    checks = compare(graph, got, want)
    print(format_table(checks), file=out)
    if run is not None:
        print(format_figures(run, sum(macs(op) for op in graph.ops), t), file=out)
    if t.accelerator:
        from edgecc.backends.delegate.litert_check import format_checks
        print(format_checks(partition_checks) if partition_checks else "no partitions: every layer runs on the CPU",
              file=out)
    # a partition's TFLite computes in TFLite's integer arithmetic, not onnxruntime's: its LSBs are a
    # figure to read (what the accelerator's compiler is handed), the program's outputs are the bar
    return all(c.ok for c in checks)


def _check_partitions(graph, inputs: list, srcdir: str) -> list:
    """LiteRT on each partition file the build wrote, against edgecc's values at its boundary."""
    import json

    from edgecc.backends.delegate.litert_check import check_partitions

    with open(os.path.join(srcdir, "report.json"), encoding="utf-8") as f:
        entries = json.load(f).get("partitions", [])
    files = {e["name"]: e["file"] for e in entries if e["device"] == "delegate"}
    return check_partitions(graph, inputs, srcdir, files)
