"""Issue 6's bars on our own trained model (the digits CNN of tests/models/make_models.py, its 200
calibration images and its test images), through the generated C run by the acceptance harness:
accuracy within 1 point of float, end-to-end SQNR at least onnxruntime quantize_static's minus
0.5 dB and below 60 dB (really int8), and a Cortex-M7 build at most 0.35x the float one's flash."""
from __future__ import annotations

import os
import re
import shutil
import sys

import numpy as np
import pytest

from conftest import ROOT, have_gcc, load_cbench
from edgecc.compiler import driver
from edgecc.compiler.quantization import Quantization

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantize_cases import digits_model, ort_logits, run_many  # noqa: E402

pytestmark = pytest.mark.slow


def sqnr(ref, got) -> float:
    ref, got = ref.astype(np.float64), got.astype(np.float64).reshape(ref.shape)
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2)))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
    import make_models

    folder = tmp_path_factory.mktemp("digits")
    d = digits_model(folder)
    ort_q = make_models.ort_quantize_static(d["path"], folder / "ort_qdq.onnx", make_models.SamplesReader(d["calib"]))
    x = d["x"]
    return dict(d, folder=folder, ref=ort_logits(d["path"], x), ort_exact=ort_logits(ort_q, x, optimize=False),
                ort_run=ort_logits(ort_q, x))


@pytest.mark.skipif(not have_gcc(), reason="needs gcc")
def test_accuracy_and_sqnr_through_the_generated_c(digits, tmp_path):
    art = driver.compile(digits["path"], target="host", outdir=str(tmp_path / "c"), emit="c",
                         quantize=Quantization(digits["calib"]))
    y = run_many(str(tmp_path / "c"), digits["x"], art.graph.outputs[0].type, str(tmp_path))
    labels, ref = digits["labels"], digits["ref"]
    acc_float = np.mean(ref.argmax(1) == labels)
    acc = np.mean(y.argmax(1) == labels)
    ours, ort_exact, ort_run = sqnr(ref, y), sqnr(ref, digits["ort_exact"]), sqnr(ref, digits["ort_run"])
    print(f"\nfloat {acc_float:.4f}, int8 {acc:.4f}; SQNR ours {ours:.2f} dB, ORT QDQ in float {ort_exact:.2f}, "
          f"ORT as it runs {ort_run:.2f}")
    assert acc >= acc_float - 0.01
    assert max(ort_exact, ort_run) - 0.5 <= ours < 60.0
    # the report's interpreter figure is the C's, on the same (calibration) images
    yc = run_many(str(tmp_path / "c"), digits["calib"]["input"], art.graph.outputs[0].type, str(tmp_path))
    ref_c = ort_logits(digits["path"], digits["calib"]["input"])
    assert art.quantization["end_to_end"][0]["sqnr_db"] == pytest.approx(sqnr(ref_c, yc), abs=0.2)


@pytest.mark.skipif(not have_gcc(), reason="needs gcc")
def test_int8_interface_through_the_generated_c(digits, tmp_path):
    art = driver.compile(digits["path"], target="host", outdir=str(tmp_path / "c"), emit="c",
                         quantize=Quantization(digits["calib"], io="int8"))
    inp, out = art.graph.inputs[0].type, art.graph.outputs[0].type
    header = (tmp_path / "c" / "model.h").read_text()
    scale = float(re.search(r"MODEL_INPUT_0_SCALE (\S+)f", header).group(1))
    zero = int(re.search(r"MODEL_INPUT_0_ZERO_POINT \((-?\d+)\)", header).group(1))
    assert (scale, zero) == pytest.approx((inp.quant.scale[0], inp.quant.zero_point[0]), rel=1e-6)
    xq = np.clip(np.rint(digits["x"] / np.float32(scale)) + zero, -128, 127).astype(np.int8)
    codes = run_many(str(tmp_path / "c"), xq, out, str(tmp_path))
    logits = (codes.astype(np.float64) - out.quant.zero_point[0]) * out.quant.scale[0]
    assert np.mean(logits.argmax(1) == digits["labels"]) >= np.mean(digits["ref"].argmax(1) == digits["labels"]) - 0.01
    assert sqnr(digits["ref"], logits) > 30.0


needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                               reason="needs the Arm toolchain and QEMU")


@needs_arm
def test_cortex_m7_build_is_int8(digits, tmp_path):
    cbench = load_cbench()
    gold = str(tmp_path / "one.npz")
    np.savez(gold, input_0=digits["x"][0], output_0=digits["ref"][:1])
    flash = {}
    for kind, q in (("float", None), ("int8", Quantization(digits["calib"]))):
        out = str(tmp_path / kind)
        driver.compile(digits["path"], target="cortex-m7", outdir=out, emit="c", quantize=q)
        res = cbench.run("m7", out, gold, "model", 1, ["-Wall", "-Wextra", "-Werror"])
        assert res.get("ok") and res["argmax_eq"], res
        flash[kind] = res["flash"]
    source = (tmp_path / "int8" / "model.c").read_text()
    float_arrays = re.findall(r"static const float (\w+)\[(\d+)\]", source)
    # what float data is left: per-channel requantization multipliers, one per output channel
    assert all(int(n) <= 16 for _, n in float_arrays), float_arrays
    print(f"\nm7 flash: float {flash['float']}, int8 {flash['int8']} ({flash['int8'] / flash['float']:.3f}x)")
    assert flash["int8"] <= 0.35 * flash["float"]  # the bar


@needs_arm
def test_cortex_m7_logits_are_the_host_builds(digits, tmp_path):
    """The M7 build (small layers through the compact kernels) gives the very integers of the host build
    (specialized kernels) on test images, so the host's accuracy and SQNR are the M7's too."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from quantize_cases import assert_m7_matches_host

    q = Quantization(digits["calib"])
    m7 = driver.compile(digits["path"], target="cortex-m7", outdir=str(tmp_path / "m7"), emit="c", quantize=q)
    driver.compile(digits["path"], target="host", outdir=str(tmp_path / "host"), emit="c", quantize=q)
    assert "q_conv_compact(" in (tmp_path / "m7" / "model.c").read_text()
    assert_m7_matches_host(tmp_path / "m7", tmp_path / "host", m7.graph, digits["x"][:40], tmp_path)
