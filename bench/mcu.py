#!/usr/bin/env python3
"""Cortex-M7 figures of edgecc's generated C for the MLPerf Tiny int8 models, next to issue 4's goals
and the two references measured on the same emulator: TFLite Micro + CMSIS-NN, and onnx2c.

usage: python bench/mcu.py [--models DIR] [--shared DIR] [--target cortex-m7] [--no-m55] [STEM ...]

Each model is compiled with `--target cortex-m7` and measured by the acceptance harness
(../shared/tools/cbench.py m7: its own startup code, linker script and flags, QEMU mps2-an500 with
-icount shift=0, instructions = CMSDK timer ticks x 40). RAM is .data + .bss of the model's objects
plus the stack one inference uses; flash is .text + .rodata + .data. With another --target the
model runs in that target's own emulator (backends/c/emulator.py) instead; the goals and the
references stay the M7's. Beside the M7's figures, the M55 columns: the same model compiled for the
Cortex-M55 (its Helium kernels, kernels/qmve.py) in QEMU mps3-an547, instructions (per MAC), flash and RAM
(issue 16's bars: 0.45 instructions per MAC, 0.6 for ad_int8); --no-m55 leaves them out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
KIB = 1024


# Issue 4's table: MACs, goals, and the references measured there on the emulated M7.
# weights: the int8 model's weight bytes (../shared/models/mlperf_tiny/README.md); flash goal = weights + 32 KiB.
REFERENCE = {
    "kws_int8": dict(macs=2_656_768, insns_goal=3_985_152, ram_goal=12_288, weights=29_408,
                     tflm_insns=7_643_680, tflm_arena=22_820, onnx2c_insns=28_962_360, onnx2c_ram=270_542),
    "vww_int8": dict(macs=7_489_664, insns_goal=11_234_496, ram_goal=61_440, weights=243_623,
                     tflm_insns=24_025_560, tflm_arena=100_708, onnx2c_insns=85_228_760, onnx2c_ram=1_686_506),
    "ic_int8": dict(macs=12_501_632, insns_goal=18_752_448, ram_goal=36_864, weights=82_023,
                    tflm_insns=30_026_040, tflm_arena=54_996, onnx2c_insns=258_696_280, onnx2c_ram=801_138),
    "ad_int8": dict(macs=264_192, insns_goal=528_384, ram_goal=2_048, weights=271_012,
                    tflm_insns=583_240, tflm_arena=2_580, onnx2c_insns=3_790_120, onnx2c_ram=1_067_808),
}
STEMS = list(REFERENCE)
sys.path.insert(0, HERE)
from host import load_cbench  # noqa: E402  (bench/host.py: cbench.py imported by path)


def measure_cbench(cbench, srcdir, golden) -> dict:
    return cbench.run("m7", srcdir, golden, "model", 1, [])


def measure_emulator(target, srcdir, graph, golden) -> dict:
    """The same figures from edgecc's own emulator runner, for targets cbench does not cover."""
    from edgecc.backends.c import emulator

    d = np.load(golden)
    ins = [d[k] for k in sorted(d.files) if k.startswith("input")]
    refs = [d[k] for k in sorted(d.files) if k.startswith("output")]
    run = emulator.build_and_run(srcdir, graph, ins, target)
    worst = max(float(np.max(np.abs(y.astype(np.float64) - r.reshape(y.shape).astype(np.float64))))
                for y, r in zip(run.outputs, refs))
    return dict(ok=True, insns=run.insns, flash=run.flash, ram=run.ram, stack=run.stack, maxdiff=worst)


def measure_m55(model, golden, n_macs, as_json, stem) -> tuple:
    """The M55 columns of a model: its Cortex-M55 C in QEMU mps3-an547 (edgecc's emulator runner)."""
    from edgecc.backends.c import emulator
    from edgecc.compiler.driver import compile as compile_model

    why = emulator.missing("cortex-m55")
    if why:
        return ("-", "-", "-", "-", why[:40])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "c")
            art = compile_model(model, target="cortex-m55", outdir=src, emit="c")
            res = measure_emulator("cortex-m55", src, art.graph, golden)
    except Exception as e:  # the M7 row still prints
        return ("FAILED", "-", "-", "-", f"{type(e).__name__}: {e}"[:40])
    if as_json:
        print(json.dumps(dict(model=stem, target="cortex-m55", **res)))
    return (n(res["insns"]), f"{res['insns'] / n_macs:.2f}", n(res["flash"]), n(res["ram"]), f"{res['maxdiff']:g}")


def n(x) -> str:
    return f"{x:,}"


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stems", nargs="*", default=STEMS)
    ap.add_argument("--models", default=os.path.join(SHARED, "models", "mlperf_tiny"))
    ap.add_argument("--shared", default=SHARED)
    ap.add_argument("--target", default="cortex-m7", help="cortex-m7 (cbench m7, default) or another Cortex-M target")
    ap.add_argument("--json", action="store_true", help="also print one JSON line per model")
    ap.add_argument("--no-m55", action="store_true", help="leave out the Cortex-M55 columns")
    a = ap.parse_args(argv)
    from edgecc.compiler.driver import compile as compile_model

    cbench = load_cbench(a.shared) if a.target == "cortex-m7" else None
    head = ("model", "MACs", "insns", "/MAC", "goal", "vs goal", "TFLM+CMSIS-NN", "vs TFLM", "onnx2c",
            "RAM", "RAM goal", "TFLM arena", "onnx2c RAM", "flash", "flash goal", "max diff")
    m55 = not a.no_m55 and a.target != "cortex-m55"
    if m55:
        head += ("M55 insns", "/MAC", "M55 flash", "M55 RAM", "M55 diff")
    rows = []
    for stem in a.stems:
        ref = REFERENCE[stem]
        model, golden = os.path.join(a.models, stem + ".onnx"), os.path.join(a.models, stem + ".npz")
        tflm = f"{n(ref['tflm_insns'])} ({ref['tflm_insns'] / ref['macs']:.2f})"
        onnx2c = f"{n(ref['onnx2c_insns'])} ({ref['onnx2c_insns'] / ref['macs']:.1f})"
        flash_goal = ref["weights"] + 32 * KIB
        refs = (n(ref["insns_goal"]), tflm, onnx2c)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                src = os.path.join(tmp, "c")
                art = compile_model(model, target=a.target, outdir=src, emit="c")
                res = measure_cbench(cbench, src, golden) if cbench else measure_emulator(a.target, src, art.graph,
                                                                                          golden)
        except Exception as e:  # a model that does not compile yet still gets its row
            res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        if a.json:
            print(json.dumps(dict(model=stem, target=a.target, **res)))
        extra = measure_m55(model, golden, ref["macs"], a.json, stem) if m55 else ()
        if not res.get("ok"):
            rows.append((stem, n(ref["macs"]), "FAILED", "-", refs[0], "-", refs[1], "-", refs[2], "-",
                         n(ref["ram_goal"]), n(ref["tflm_arena"]), n(ref["onnx2c_ram"]), "-", n(flash_goal),
                         res.get("error", "")[:70].replace("\n", " ")) + extra)
            continue
        insns = res["insns"]
        rows.append((stem, n(ref["macs"]), n(insns), f"{insns / ref['macs']:.2f}", refs[0],
                     ratio(insns, ref["insns_goal"]), refs[1], ratio(insns, ref["tflm_insns"]), refs[2],
                     n(res["ram"]), n(ref["ram_goal"]), n(ref["tflm_arena"]), n(ref["onnx2c_ram"]),
                     n(res["flash"]), n(flash_goal), f"{res['maxdiff']:g}") + extra)
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print(f"target {a.target}; insns = instructions per inference (per MAC); goals and references from issue 4 "
          f"(Cortex-M7, QEMU mps2-an500); vs = ours / theirs, lower is better")
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
