#!/usr/bin/env python3
"""Post-training quantization (issues 6 and 15) on the digits CNN of tests/models/make_models.py, next to
onnxruntime's quantize_static on the same calibration set: int8, 4-bit weights, and auto under a flash budget.

usage: python bench/quantize.py [--models DIR] [--shared DIR] [--methods minmax,percentile,entropy] [--io float|int8]

The float model, its 200 calibration images and its test images come from make_models.py (built in a
temporary folder unless --models holds them). For each calibration method, edgecc compiles the model with
--quantize int8 for the host; the acceptance harness (../shared/tools/cbench.py host --many) runs every test
image through the generated C, and the logits are compared with onnxruntime's float model: accuracy and
end-to-end SQNR = 10 log10(sum float^2 / sum (float - int8)^2). The reference is quantize_static (QDQ,
per-channel int8 weights, int8 activations, MinMax) run by onnxruntime twice: as it runs by default
(its fused integer kernels; on x86 CPUs without VNNI they saturate int16 sums, which costs it a lot) and
with graph optimizations off (every QDQ node computed in float: the scheme's own numbers). Flash and
instructions: the cortex-m7 builds (default optimization, "balanced"), by cbench m7 (.text + .rodata +
.data of the model's objects; one inference); the int8 flash is given over the float build's. The last
column runs every test image through the cortex-m7 build in QEMU and counts those whose logits are
identical to the host C build's. The 4-bit rows: onnxruntime's quantize_static with QInt4 weights (per
channel, MinMax), edgecc's --weights int4, and --weights auto with --flash a quarter of the way from the
int4 build's Cortex-M7 flash to the int8 build's (its host and M7 builds are compared when auto chose the
same layers for both: the host target's flash estimate counts no code).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
MODEL = "digits_cnn_fp32"
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import make_models  # noqa: E402  (the digits CNN, and onnxruntime's quantize_static as we compare with it)
from host import load_cbench  # noqa: E402  (bench/host.py: cbench.py imported by path)


def build_models(folder: str) -> str:
    make_models.build_all(folder, [MODEL], verbose=False)
    return folder


def ort_logits(model, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: xi})[0] for xi in x])


def sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    ref, got = ref.astype(np.float64), got.astype(np.float64).reshape(ref.shape)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2)))


def run_c_many(cbench, srcdir: str, x: np.ndarray, out_shape, out_dtype, work: str) -> np.ndarray:
    """Every sample of x through the generated C (cbench host --many); the outputs [N, *out_shape]."""
    gold, save = os.path.join(work, "many.npz"), os.path.join(work, "many_out.npy")
    np.savez(gold, input_0=x, output_shape=np.asarray(out_shape), output_dtype=np.asarray(str(np.dtype(out_dtype))))
    res = cbench.run("host", srcdir, gold, "model", 1, [], None, 1, save)
    if not res.get("ok"):
        raise RuntimeError(f"cbench host --many failed: {res}")
    return np.load(save)


def m7_figures(cbench, srcdir: str, x0: np.ndarray, y0: np.ndarray, work: str) -> dict:
    """cbench m7 on one sample: flash, RAM and instructions of one inference."""
    gold = os.path.join(work, "one.npz")
    np.savez(gold, input_0=x0, output_0=y0)
    res = cbench.run("m7", srcdir, gold, "model", 1, [])
    if not res.get("ok"):
        raise RuntimeError(f"cbench m7 failed: {res}")
    return res


def m7_outputs(srcdir: str, graph, xs: np.ndarray, work: str) -> np.ndarray:
    """Every sample through the Cortex-M7 build in QEMU (built once, run once per sample)."""
    from edgecc.backends.c import emulator

    folder = tempfile.mkdtemp(dir=work)
    elf, _ = emulator.build(srcdir, folder, "cortex-m7", len(graph.inputs), len(graph.outputs))
    out = graph.outputs[0]
    shape = graph.inputs[0].type.shape
    return np.stack([emulator.run(elf, folder, "cortex-m7", [xi.reshape(shape)],
                                  [(out.type.np_dtype, out.type.shape)])[0][0] for xi in xs])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="folder with digits_cnn_fp32.onnx, digits_calib.npz, digits_test.npz")
    ap.add_argument("--shared", default=SHARED)
    ap.add_argument("--methods", default="minmax,percentile,entropy")
    ap.add_argument("--io", default="float", choices=("float", "int8"))
    ap.add_argument("--no-m7", action="store_true", help="skip the Cortex-M7 flash figures")
    a = ap.parse_args(argv)
    from edgecc.compiler.driver import compile as compile_model
    from edgecc.compiler.quantization import Quantization

    cbench = load_cbench(a.shared)
    with tempfile.TemporaryDirectory(prefix="bench-quantize-") as work:
        models = a.models or build_models(os.path.join(work, "models"))
        onnx_path = os.path.join(models, f"{MODEL}.onnx")
        calib = dict(np.load(os.path.join(models, "digits_calib.npz")))
        test = np.load(os.path.join(models, "digits_test.npz"))
        x, labels = test["x"], test["y"]
        input_name = next(iter(calib))
        ref = ort_logits(onnx_path, x)
        rows = [("float (onnxruntime)", float(np.mean(ref.argmax(1) == labels)), None, None)]
        for weights in ("int8", "int4"):
            ort_q = make_models.ort_quantize_static(onnx_path, os.path.join(work, f"ort_{weights}.onnx"),
                                                    make_models.SamplesReader(calib), weights, preprocess=True)
            ort_default, ort_exact = ort_logits(ort_q, x), ort_logits(ort_q, x, optimize=False)
            kind = "QInt4 weights" if weights == "int4" else "int8"
            rows.append((f"ORT quantize_static {kind}, run by ORT", float(np.mean(ort_default.argmax(1) == labels)),
                         sqnr(ref, ort_default), None))
            rows.append((f"ORT quantize_static {kind}, QDQ in float", float(np.mean(ort_exact.argmax(1) == labels)),
                         sqnr(ref, ort_exact), None))
        float_m7 = None
        if not a.no_m7:
            fdir = os.path.join(work, "float_m7")
            compile_model(onnx_path, target="cortex-m7", outdir=fdir, emit="c")
            float_m7 = m7_figures(cbench, fdir, x[0], ref[:1], work)
        rows = [r + ((float_m7["insns"] if float_m7 and i == 0 else None), None, None) for i, r in enumerate(rows)]

        def real(raw, out):
            y = raw.reshape(len(x), -1).astype(np.float64)
            if out.type.quant is not None:
                y = (y - out.type.quant.zero_point[0]) * out.type.quant.scale[0]
            return y

        def edgecc_row(label, q, tag, flash=None):
            """Accuracy and SQNR of the host C on every test image; the M7 build's flash and instructions, and on
            how many images its logits are the host C's. With a flash budget (auto, whose choice depends on the
            target: the host's estimate counts no code) the figures are the M7 build's own, run in QEMU."""
            cdir = os.path.join(work, f"c_{tag}")
            art = compile_model(onnx_path, target="host", outdir=cdir, emit="c", quantize=q)
            inp, out = art.graph.inputs[0], art.graph.outputs[0]
            xs = x
            if inp.type.quant is not None:
                s, z = inp.type.quant.scale[0], inp.type.quant.zero_point[0]
                xs = np.clip(np.rint(x / np.float32(s)) + z, -128, 127).astype(np.int8)
            raw = None if flash else run_c_many(cbench, cdir, xs, out.type.shape, out.type.np_dtype, work)
            y = None if flash else real(raw, out)
            ratio = insns = same = m7 = None
            if float_m7:
                mdir = os.path.join(work, f"m7_{tag}")
                art7 = compile_model(onnx_path, target="cortex-m7", outdir=mdir, emit="c", quantize=q, flash=flash)
                x0 = xs[:1].reshape(art7.graph.inputs[0].type.shape)
                m7 = m7_figures(cbench, mdir, x0, np.zeros(out.type.shape, out.type.np_dtype), work)
                ratio, insns = m7["flash"] / float_m7["flash"], m7["insns"]
                y7 = m7_outputs(mdir, art7.graph, xs, work)
                if flash:
                    y = real(y7, art7.graph.outputs[0])
                else:
                    same = f"{int(np.sum(np.all(y7.reshape(len(x), -1) == raw.reshape(len(x), -1), axis=1)))}/{len(x)}"
            if y is None:  # a budget and no M7: nothing to measure
                return None
            rows.append((label, float(np.mean(y.argmax(1) == labels)), sqnr(ref, y), ratio, insns, same,
                         m7["flash"] if m7 else None))
            return m7

        int8 = None
        for method in a.methods.split(","):
            m7 = edgecc_row(f"edgecc int8 {method} (io {a.io}), C", Quantization(calib, method=method, io=a.io), method)
            int8 = m7 if method == "minmax" else int8
        if int8 is None:
            int8 = edgecc_row(f"edgecc int8 minmax (io {a.io}), C", Quantization(calib, io=a.io), "int8")
        int4 = edgecc_row(f"edgecc int4 weights (io {a.io}), C", Quantization(calib, io=a.io, weights="int4"), "int4")
        if int8 and int4:
            budget = int4["flash"] + (int8["flash"] - int4["flash"]) // 4
            edgecc_row(f"edgecc auto, --flash {budget} (io {a.io}), m7 C",
                       Quantization(calib, io=a.io, weights="auto"), "auto", flash=budget)
    print(f"digits CNN: {len(calib[input_name])} calibration images, {len(x)} test images; float m7 flash "
          f"{float_m7['flash'] if float_m7 else '-'} bytes; auto's budget: a quarter of the way from the int4 "
          f"build's m7 flash to the int8 build's")
    print(f"{'model':<50} {'accuracy':>8} {'SQNR dB':>8} {'m7 flash':>8} {'vs float':>8} {'m7 insns':>9} "
          f"{'m7 = host C':>11}")
    for name, acc, db, ratio, insns, same, flash in rows:
        print(f"{name:<50} {100 * acc:7.2f}% {'-' if db is None else f'{db:.2f}':>8} {flash or '-':>8} "
              f"{'-' if ratio is None else f'{ratio:.3f}x':>8} {'-' if insns is None else insns:>9} "
              f"{same or '-':>11}")

if __name__ == "__main__":
    main()
