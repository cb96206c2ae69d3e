#!/usr/bin/env python3
"""Pruned variants of the MLPerf Tiny int8 models, compiled with sparsity on and off, side by side on
the emulated Cortex-M7 (../shared/tools/cbench.py m7).

usage: python bench/sparsity.py [STEM ...] [--shared DIR]

Variants (bench/prune.py, on every layer with 16 or more inputs per output): unstructured 80 % (the
fraction 0.2 largest weights kept per layer), 1:8 and 2:4 along the input channels, and half the
channels of the pointwise convs zeroed end to end. For each: instructions and flash with --sparsity on
against --sparsity off (the ratio), and the largest difference from onnxruntime on the pruned model.
What the build does with them today: it removes channels that are zero end to end
(compiler/passes/remove_zero_channels.py); the zeros left inside layers are still multiplied (no
sparse kernels), so the unstructured and N:M rows show what they cost the dense kernels.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
sys.path.insert(0, HERE)
from host import load_cbench  # noqa: E402
from prune import prune_model, prune_unstructured, zero_channels  # noqa: E402

VARIANTS = {
    "80% unstructured": lambda m: prune_unstructured(m, 0.2),
    "1:8": lambda m: prune_model(m, 1, 8),
    "2:4": lambda m: prune_model(m, 2, 4),
    "half channels": lambda m: zero_channels(m, 0.5),
}


def pruned(source: str, prune, folder: str, name: str) -> tuple[str, str]:
    """(the pruned model, its golden: onnxruntime on the source's golden input)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(source)
    prune(model)
    path = os.path.join(folder, name + ".onnx")
    onnx.save(model, path)
    x = np.load(source.replace(".onnx", ".npz"))["input"]
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    golden = path.replace(".onnx", ".npz")
    np.savez(golden, input=x, output=s.run(None, {s.get_inputs()[0].name: x})[0])
    return path, golden


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stems", nargs="*", default=["kws", "vww", "ic"])
    ap.add_argument("--shared", default=os.environ.get("EDGECC_SHARED", SHARED))
    args = ap.parse_args(argv)
    from edgecc.compiler.driver import compile as compile_model

    cbench = load_cbench(args.shared)
    rows = [("model", "variant", "insns off", "insns on", "on/off", "flash off", "flash on", "on/off",
             "max diff (LSB)")]
    with tempfile.TemporaryDirectory() as tmp:
        for stem in args.stems:
            source = os.path.join(args.shared, "models", "mlperf_tiny", f"{stem}_int8.onnx")
            for variant, prune in VARIANTS.items():
                path, golden = pruned(source, prune, tmp, f"{stem}_{variant.replace(' ', '_').replace(':', 'of')}")
                got = {}
                for mode in ("off", "on"):
                    src = os.path.join(tmp, f"c_{mode}")
                    compile_model(path, target="cortex-m7", outdir=src, emit="c", sparsity=mode)
                    got[mode] = cbench.run("m7", src, golden, "model", 1, [])
                off, on = got["off"], got["on"]
                rows.append((stem, variant, f"{off['insns']:,}", f"{on['insns']:,}", f"{on['insns'] / off['insns']:.2f}x",
                             f"{off['flash']:,}", f"{on['flash']:,}", f"{on['flash'] / off['flash']:.2f}x",
                             f"{max(off['maxdiff'], on['maxdiff']):g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("Cortex-M7 (cbench m7, QEMU mps2-an500): --sparsity on against --sparsity off on each pruned model")
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
