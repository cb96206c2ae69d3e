#!/usr/bin/env python3
"""4-bit weights over several trained digits CNNs (issue 15's accuracy bar), next to onnxruntime's QInt4.

usage: python bench/quantize_variants.py [--seeds 5] [--epochs 20,60] [--shared DIR]

The CNN of tests/models/make_models.py, trained from different seeds and for different numbers of epochs on
scikit-learn's digits split as the issue's acceptance set is (597 test images, stratified; the first 200
training images calibrate). Per model: the float model's accuracy (onnxruntime), onnxruntime's quantize_static
with QInt4 weights (per channel, int8 activations, MinMax, QDQ computed in float), and edgecc --weights int4
and int8 compiled for the host and run on every test image by the acceptance harness (cbench host --many),
with the end-to-end SQNR of the logits against the float model's. "alone" is the same 4-bit build with every
layer chosen on the float model's inputs (what edgecc did before it chose the layers in order, each on the
inputs the 4-bit layers before it give). The bar is onnxruntime's QInt4 accuracy plus 3 points; the last
column says whether edgecc's 4-bit build meets it, and "bar > float" where it is above the float model's own.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
from host import load_cbench  # noqa: E402
import make_models  # noqa: E402
from quantize import SHARED, ort_logits, run_c_many, sqnr  # noqa: E402

TEST_IMAGES, CALIBRATION_IMAGES = 597, 200


def split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return train_test_split(x, d.target.astype(np.int64), test_size=TEST_IMAGES, random_state=0,
                            stratify=d.target)


def train(x, y, seed: int, epochs: int, path: str) -> str:
    import onnx

    net = make_models._DigitsCNN(np.random.default_rng(1000 + seed))
    net.train(x.astype(np.float64), y, np.random.default_rng(2000 + seed), epochs=epochs)
    onnx.save(make_models._digits_onnx(net.p), path)
    return path


def edgecc_logits(cbench, path, calib, x, weights, work, alone=False):
    from edgecc.compiler.driver import compile as compile_model
    from edgecc.compiler.passes import quantize_int8
    from edgecc.compiler.quantization import Quantization

    keep = quantize_int8._with_weights4
    if alone:
        quantize_int8._with_weights4 = lambda op, four: None  # the twin never differs: the float inputs
    try:
        cdir = tempfile.mkdtemp(dir=work)
        art = compile_model(path, target="host", outdir=cdir, emit="c",
                            quantize=Quantization({"input": calib}, weights=weights))
    finally:
        quantize_int8._with_weights4 = keep
    out = art.graph.outputs[0]
    return run_c_many(cbench, cdir, x, out.type.shape, out.type.np_dtype, work).reshape(len(x), -1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", default="20,60")
    ap.add_argument("--shared", default=SHARED)
    a = ap.parse_args(argv)
    cbench = load_cbench(a.shared)
    x_tr, x_te, y_tr, y_te = split()
    calib, x = x_tr[:CALIBRATION_IMAGES, None], x_te[:, None]
    acc = lambda logits: float(np.mean(logits.argmax(1) == y_te))  # noqa: E731
    print(f"digits CNN variants: {CALIBRATION_IMAGES} calibration images, {len(x)} test images; accuracy % "
          f"(end-to-end SQNR dB)")
    print(f"{'epochs':>6} {'seed':>4} {'float':>6} {'ORT QInt4':>14} {'bar':>6} {'edgecc int8':>14} "
          f"{'edgecc int4':>14} {'int4 alone':>14}  bar")
    met = above = met_below = 0
    with tempfile.TemporaryDirectory(prefix="bench-variants-") as work:
        for epochs in map(int, a.epochs.split(",")):
            for seed in range(a.seeds):
                path = train(x_tr, y_tr, seed, epochs, os.path.join(work, f"digits_{epochs}_{seed}.onnx"))
                ref = ort_logits(path, x)
                ort4_path = make_models.ort_quantize_static(path, path + ".int4.onnx", make_models.SamplesReader(
                    {"input": calib}), "int4", preprocess=True)
                ort4 = ort_logits(ort4_path, x, optimize=False)
                rows = [edgecc_logits(cbench, path, calib, x, "int8", work),
                        edgecc_logits(cbench, path, calib, x, "int4", work),
                        edgecc_logits(cbench, path, calib, x, "int4", work, alone=True)]
                bar = acc(ort4) + 0.03
                ok = acc(rows[1]) >= bar - 1e-9
                met += ok
                above += bar > acc(ref)
                met_below += ok and bar <= acc(ref)
                cell = lambda y: f"{100 * acc(y):.2f} ({sqnr(ref, y):5.2f})"  # noqa: E731
                print(f"{epochs:>6} {seed:>4} {100 * acc(ref):6.2f} {cell(ort4):>14} {100 * bar:6.2f} "
                      f"{cell(rows[0]):>14} {cell(rows[1]):>14} {cell(rows[2]):>14}  "
                      f"{'met' if ok else 'missed'}{', bar > float' if bar > acc(ref) else ''}")
    total = a.seeds * len(a.epochs.split(","))
    print(f"bar met on {met} of {total} models; it is above the float model's own accuracy on {above}; met on "
          f"{met_below} of the {total - above} where it is not")


if __name__ == "__main__":
    main()
