#!/usr/bin/env python3
"""Peak RAM of every MLPerf Tiny model: edgecc's memory plan next to its lower bound, on the host and on
the Cortex-M7, and the RAM the emulated M7 measures, next to issue 4's goals and TFLite Micro's arena.

usage: python bench/memory.py [--models DIR] [--shared DIR] [--no-m7] [--bars] [STEM ...]

For each model: the arena of its memory plan and the lower bound it is measured against (the most
bytes live at one layer: no placement does better without changing what is live) for `--target host`
and `--target cortex-m7`, then the acceptance harness's figure on the emulated M7 (cbench.py m7:
.data + .bss of the model's objects plus the stack one inference uses). --bars adds issue 5's
budgeted builds (vww_int8 in 40K, kws_int8 in 10K, vww_int8 in 8K refused) with their instructions
next to the untiled build's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
STEMS = ["kws_int8", "kws_fp32", "vww_int8", "vww_fp32", "ic_int8", "ic_fp32", "ad_int8", "ad_fp32"]
RAM_GOAL = {"kws_int8": 12_288, "vww_int8": 61_440, "ic_int8": 36_864, "ad_int8": 2_048}  # issue 4
TFLM_ARENA = {"kws_int8": 22_820, "vww_int8": 100_708, "ic_int8": 54_996, "ad_int8": 2_580}  # on the emulated M7
BARS = [("vww_int8", "40K", 40_960), ("kws_int8", "10K", 10_240), ("vww_int8", "8K", None)]
sys.path.insert(0, HERE)
from host import load_cbench  # noqa: E402  (bench/host.py: cbench.py imported by path)


def n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def plan_of(model, target, outdir, sram=None) -> dict:
    """The memory section of report.json after compiling (raises EdgeccError when refused)."""
    from edgecc.compiler.driver import compile as compile_model
    from edgecc.compiler.memory.budget import parse_size

    compile_model(model, target=target, outdir=outdir, emit="c", sram=parse_size(sram) if sram else None)
    with open(os.path.join(outdir, "report.json"), encoding="utf-8") as f:
        return json.load(f)["memory"]


def table(head, rows) -> None:
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stems", nargs="*", default=STEMS)
    ap.add_argument("--models", default=os.path.join(SHARED, "models", "mlperf_tiny"))
    ap.add_argument("--shared", default=SHARED)
    ap.add_argument("--no-m7", action="store_true", help="skip the emulated Cortex-M7 (plans only)")
    ap.add_argument("--bars", action="store_true", help="also issue 5's budgeted builds")
    a = ap.parse_args(argv)
    cbench = None if a.no_m7 else load_cbench(a.shared)
    head = ("model", "host arena", "host bound", "M7 arena", "M7 bound", "M7 peak layer", "M7 RAM (cbench)",
            "stack", "RAM goal", "TFLM arena", "max diff")
    rows, untiled = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for stem in a.stems:
            model, golden = os.path.join(a.models, stem + ".onnx"), os.path.join(a.models, stem + ".npz")
            host = plan_of(model, "host", os.path.join(tmp, stem + "_host"))
            m7_dir = os.path.join(tmp, stem + "_m7")
            m7 = plan_of(model, "cortex-m7", m7_dir)
            res = cbench.run("m7", m7_dir, golden, "model", 1, []) if cbench else {}
            untiled[stem] = res
            rows.append((stem, n(host["arena_bytes"]), n(host["lower_bound"]), n(m7["arena_bytes"]),
                         n(m7["lower_bound"]), m7["peak_layer"].split(";")[0][:28],
                         n(res.get("ram", "-")), n(res.get("stack", "-")), n(RAM_GOAL.get(stem, "-")),
                         n(TFLM_ARENA.get(stem, "-")), res.get("maxdiff", "-") if res.get("ok", True) else "FAILED"))
        print("peak RAM per model: arena of the memory plan and its lower bound (bytes), RAM on the emulated "
              "Cortex-M7 (arena + other .data/.bss + stack)")
        table(head, rows)
        if a.bars:
            print("\nissue 5's bars (cbench m7): budgeted builds against the untiled one")
            bar_rows = []
            for stem, sram, limit in BARS:
                model, golden = os.path.join(a.models, stem + ".onnx"), os.path.join(a.models, stem + ".npz")
                out = os.path.join(tmp, f"{stem}_{sram}")
                try:
                    mem = plan_of(model, "cortex-m7", out, sram)
                except Exception as e:  # the refusal is the expected outcome for a budget below the floor
                    bar_rows.append((stem, sram, "refused", "-", "-", "-", "-", str(e)[-90:]))
                    continue
                res = cbench.run("m7", out, golden, "model", 1, []) if cbench else {}
                base = untiled.get(stem) or (cbench.run("m7", os.path.join(tmp, stem + "_m7"), golden, "model", 1, [])
                                             if cbench else {})
                ratio = f"{res['insns'] / base['insns']:.3f}x" if res.get("insns") and base.get("insns") else "-"
                tiled = [f"{s['layer'].split(';')[0][:24]} x{s['rows_per_strip']}" for s in mem["timeline"]
                         if s["rows_per_strip"]]
                bar_rows.append((stem, sram, n(res.get("ram", mem["arena_bytes"])), n(limit),
                                 n(res.get("insns", "-")), ratio, res.get("maxdiff", "-"), ", ".join(tiled) or "-"))
            table(("model", "--sram", "RAM", "bar", "insns", "vs untiled", "max diff", "tiled (rows per strip)"),
                  bar_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
