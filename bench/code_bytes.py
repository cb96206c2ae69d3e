#!/usr/bin/env python3
"""Code bytes per kernel template on a Cortex-M target, and the flash estimate of `--weights auto` next to the
flash measured: where the target file's [costs.code_bytes] come from, and how far they are off.

usage: python bench/code_bytes.py [--target cortex-m7] [--models DIR] [--shared DIR] [STEM ...]

Each model (default: the digits CNN of tests/models/make_models.py and the small CNN of the quantization tests,
tests/compiler/quantize_cases.py, each quantized with int8 and with 4-bit weights, and the MLPerf Tiny int8
models) is compiled for the target, its C cross-compiled with the target's flags
(-ffunction-sections -fdata-sections, as cbench does), and every layer's function (.text.layer_<name>*,
plus the const struct of its shape, .rodata.shape.<n>, in the order the layers hold them) is attributed to
the kernel template that rendered it; functions that are no layer's (the shared kernels of the preludes,
q_*_compact, and the API, model_*) are listed by name. Last, per model: backends/c/flash.py's estimate
(data exact, code from the table) beside the measured flash (.text + .rodata + .data of model.c).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
MLPERF = ["kws_int8", "vww_int8", "ic_int8", "ad_int8"]
# the shared kernels' functions and the preludes that hold them (the table's keys)
PRELUDES = {"q_conv_compact": "compact/conv.c.j2", "q_conv4_compact": "compact/conv4.c.j2",
            "q_max_pool_compact": "compact/max_pool.c.j2", "q_average_pool_compact": "compact/average_pool.c.j2"}


def compiled(path, target, outdir, quantize=None):
    from edgecc.backends.registry import backend_for
    from edgecc.compiler.driver import compile as compile_model

    art = compile_model(path, target=target, outdir=outdir, emit="c", quantize=quantize)
    backend = backend_for(target)
    return art.graph, backend


def measure(outdir, target):
    """{section: bytes} of model.c cross-compiled for the target."""
    from edgecc.backends.c import emulator
    from edgecc.backends.registry import get_target

    t = get_target(target)
    obj = os.path.join(outdir, "model.o")
    emulator._compile(emulator.tool(t, "gcc"), [*t.cflags, *emulator.MODEL_CFLAGS, f"-I{outdir}"],
                      os.path.join(outdir, "model.c"), obj)
    return emulator.section_sizes(t, [obj])


def attribute(graph, backend, outdir, sections):
    """{template or function: [bytes per layer]}: each layer's function (and shape struct) by its template."""
    from edgecc.compiler.passes.memory_plan import is_view

    report = json.load(open(os.path.join(outdir, "report.json")))
    source = open(os.path.join(outdir, "model.c")).read()
    numbered = [(re.fullmatch(r"\.rodata\.shape\.(\d+)", s), n) for s, n in sections.items()]
    shapes = [n for _, n in sorted((int(m.group(1)), n) for m, n in numbered if m)]
    per = defaultdict(list)
    used = set()
    for op, row in zip(graph.ops, report["layers"]):
        if is_view(op):
            continue
        fn = row["function"]
        mine = [s for s in sections if re.fullmatch(rf"\.text\.{fn}(\.\w+\.\d+)?", s)]  # (gcc's .constprop.0)
        used.update(mine)
        size = sum(sections[s] for s in mine)
        body = source.split(f" {fn}(", 1)[1].split("\n}\n", 1)[0] if f" {fn}(" in source else ""
        if "static const q_" in body and shapes:
            size += shapes.pop(0)
        per[backend.kernel(op).template].append(size)
    for s, n in sections.items():
        m = re.fullmatch(r"\.text\.(\w+?)(\.\w+\.\d+)?", s)
        if m and s not in used and n:
            per[m.group(1)].append(n)
    return per


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stems", nargs="*", default=["digits_int8", "digits_int4", "cnn_int8", "cnn_int4"] + MLPERF)
    ap.add_argument("--target", default="cortex-m7")
    ap.add_argument("--models", default=os.path.join(SHARED, "models", "mlperf_tiny"))
    ap.add_argument("--shared", default=SHARED)
    a = ap.parse_args(argv)
    from edgecc.backends.c.flash import code_table
    from edgecc.backends.c.emulator import flash_and_ram
    from edgecc.backends.registry import get_target
    from edgecc.compiler.quantization import Quantization

    table = code_table(get_target(a.target))
    per, rows = defaultdict(list), []
    with tempfile.TemporaryDirectory(prefix="bench-code-") as work:
        digits = None
        for stem in a.stems:
            quantize, path = None, os.path.join(a.models, stem + ".onnx")
            if stem.startswith("digits_"):
                if digits is None:
                    sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
                    import make_models

                    digits = os.path.join(work, "digits")
                    make_models.build_all(digits, ["digits_cnn_fp32"], verbose=False)
                path = os.path.join(digits, "digits_cnn_fp32.onnx")
                calib = dict(np.load(os.path.join(digits, "digits_calib.npz")))
                quantize = Quantization(calib, weights=stem.split("_")[1])
            elif stem.startswith("cnn_"):  # the small CNN of the quantization tests (tests/compiler)
                sys.path.insert(0, os.path.join(ROOT, "tests", "compiler"))
                from quantize_cases import calibration, float_cnn

                path = float_cnn(os.path.join(work, "cnn.onnx"))
                quantize = Quantization(calibration(16), weights=stem.split("_")[1])
            out = os.path.join(work, stem)
            graph, backend = compiled(path, a.target, out, quantize)
            sections = measure(out, a.target)
            for k, v in attribute(graph, backend, out, sections).items():
                per[k] += v
            est = backend.flash_bytes(graph)
            rows.append((stem, est["data"], est["code"], est["total"], flash_and_ram(sections)[0]))
    print(f"target {a.target}: code bytes per layer (template) or per function, measured; the table's value")
    for k in sorted(per):
        v = per[k]
        print(f"  {k:<34} n={len(v):<3} min {min(v):>6,} mean {sum(v) / len(v):>8,.0f} max {max(v):>6,}   "
              f"table {table.get(PRELUDES.get(k, k), '-')}")
    print(f"\n{'model':<14} {'data':>9} {'code est.':>9} {'estimate':>9} {'measured':>9} {'est./meas.':>10}")
    for stem, data, code, total, flash in rows:
        print(f"{stem:<14} {data:>9,} {code:>9,} {total:>9,} {flash:>9,} {total / flash:>10.3f}")


if __name__ == "__main__":
    main()
