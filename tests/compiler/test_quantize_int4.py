"""--weights int4 and auto: 4-bit weights in the quantized graph, their report, their QDQ export, the command
line, and auto's choice under a flash budget (on the small CNN of quantize_cases.py)."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from conftest import edgecc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantize_cases import calibration, float_cnn  # noqa: E402

from edgecc.compiler import driver  # noqa: E402
from edgecc.compiler.quantization import Quantization  # noqa: E402
from edgecc.compiler.quantization.report import format_report  # noqa: E402
from edgecc.ir.errors import EdgeccError  # noqa: E402
from edgecc.ir.interp import run  # noqa: E402

WEIGHTED = ("conv", "fully_connected")


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cnn")
    np.savez(folder / "calib.npz", **calibration(24))
    return float_cnn(folder / "cnn.onnx"), dict(np.load(folder / "calib.npz")), folder


def quantized(cnn, target="host", flash=None, **kw):
    path, calib, _ = cnn
    return driver.compile(path, target=target, emit="ir", quantize=Quantization(calib, **kw), flash=flash)


def weights_of(graph) -> dict:
    return {op.name: op.operands[1].type.dtype for op in graph.ops if op.kind in WEIGHTED}


def test_int4_gives_4_bit_weights_and_keeps_int8_activations(cnn):
    g = quantized(cnn, weights="int4").graph
    assert weights_of(g) == {"conv1": "i4", "conv2": "i4", "conv3": "i4", "fc": "i4"}
    conv2 = g.op_by_name("conv2")
    assert conv2.operands[0].type.dtype == "i8" and len(conv2.operands) == 3  # a bias for the 4-bit weights' shift
    rows = {r["name"]: r["precision"] for r in g.meta["quantization"]["layers"]}
    assert rows["conv1"] == rows["fc"] == "int4" and rows["pool"] == "int8"
    assert g.meta["quantization"]["weights"] == "int4"
    assert g.meta["quantization"]["weight_bytes"]["quantized"] < quantized(cnn).graph.meta["quantization"][
        "weight_bytes"]["quantized"]


def test_keep_float_still_applies(cnn):
    g = quantized(cnn, weights="int4", keep_float=("conv3",)).graph
    assert weights_of(g)["conv3"] == "f32" and weights_of(g)["conv1"] == "i4"


def test_int4_is_closer_to_float_than_min_max_4_bit_weights(cnn, monkeypatch):
    """The report's end-to-end SQNR: steps and codes chosen on the data against each channel's max / 7 and
    rounding to nearest (what a min-max quantizer does), both below int8."""
    from edgecc.compiler.passes import quantize_int8
    from edgecc.compiler.quantization.weights4 import Weights4

    def sqnr():
        return quantized(cnn, weights="int4").graph.meta["quantization"]["end_to_end"][0]["sqnr_db"]

    def min_max(w, moments):
        s = (np.abs(w).reshape(len(w), -1).max(axis=1) / 7).astype(np.float32)
        codes = np.clip(np.rint(w / s.reshape((-1,) + (1,) * (w.ndim - 1))), -8, 7).astype(np.int8)
        return Weights4(codes, s, np.zeros(len(w)), np.zeros(len(w)))

    ours = sqnr()
    monkeypatch.setattr(quantize_int8, "choose", min_max)
    theirs = sqnr()
    int8 = quantized(cnn).graph.meta["quantization"]["end_to_end"][0]["sqnr_db"]
    print(f"\nend-to-end SQNR: int8 {int8} dB, 4-bit chosen on the data {ours}, 4-bit min-max {theirs}")
    assert theirs + 3.0 < ours < int8


def test_each_layer_is_chosen_on_what_the_4_bit_layers_before_it_give(cnn, monkeypatch):
    """Chosen in order, each layer on the inputs the 4-bit layers before it produce and aiming at the float
    model's output, against every layer chosen on the float model's inputs (the twin never run): the
    end-to-end SQNR is higher."""
    from edgecc.compiler.passes import quantize_int8

    def sqnr():
        return quantized(cnn, weights="int4").graph.meta["quantization"]["end_to_end"][0]["sqnr_db"]

    in_order = sqnr()
    monkeypatch.setattr(quantize_int8, "_with_weights4", lambda op, four: None)
    alone = sqnr()
    print(f"\nend-to-end SQNR, 4-bit: each layer on the 4-bit inputs {in_order} dB, on the float inputs {alone}")
    assert in_order > alone + 0.5


def test_qdq_export_reads_back_and_runs_in_onnxruntime(cnn, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path, calib, _ = cnn
    art = driver.compile(path, target="host", outdir=str(tmp_path / "q.onnx"), emit="onnx",
                         quantize=Quantization(calib, weights="int4"))
    back = driver.load(str(tmp_path / "q.onnx"))
    assert {c.type.dtype for c in back.constants} >= {"i4"}
    x = calib["x"][:4]
    sess = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    for xi in x:
        want = sess.run(None, {"x": xi})
        got = run(art.graph, [xi])
        for w, y in zip(want, got):
            np.testing.assert_allclose(y, w, atol=0.02 * (np.abs(w).max() + 1e-6))


def test_report_text(cnn):
    text = format_report(quantized(cnn, weights="int4").graph.meta["quantization"])
    assert "4-bit weights (int8 activations)" in text
    assert "\nconv1 " in text and " int4 " in text.split("\nconv1 ")[1].splitlines()[0]


def test_auto_follows_the_budget(cnn):
    ends = quantized(cnn, weights="auto", target="cortex-m7").graph.meta["quantization"]["auto"]
    int8, int4 = ends["flash_int8"], ends["flash_int4"]
    assert int4 < int8 and ends["four"] == []  # the target's 2 MiB: nothing to save
    for budget in (int4, (int4 + int8) // 2, int8):
        auto = quantized(cnn, weights="auto", target="cortex-m7", flash=budget).graph.meta["quantization"]["auto"]
        assert auto["flash"] <= budget and auto["budget"] == budget
        assert (auto["flash"] == int8) == (auto["four"] == [])
    tight = quantized(cnn, weights="auto", target="cortex-m7", flash=int4).graph
    assert set(weights_of(tight).values()) == {"i4"}
    with pytest.raises(EdgeccError, match=f"needs at least {int4:,} bytes of flash with 4-bit weights everywhere"):
        quantized(cnn, weights="auto", target="cortex-m7", flash=int4 - 1)


def test_auto_measures_every_candidate_layer(cnn):
    """Each layer's sensitivity: the end-to-end SQNR with it alone 4-bit, below int8 everywhere's."""
    report = quantized(cnn, weights="auto", target="cortex-m7").graph.meta["quantization"]
    auto = report["auto"]
    by_name = {r["layer"]: r for r in auto["layers"]}
    assert set(by_name) == {"conv1", "conv2", "conv3", "fc"}
    assert all(r["bits"] == 8 and r["sqnr_db"] < auto["sqnr_db_int8"] for r in by_name.values())
    assert "SQNR with it alone 4-bit" in format_report(report)


def test_command_line(cnn, tmp_path):
    path, _, folder = cnn
    p = edgecc(path, "--quantize", "int8", "--weights", "int4", "--calibration", folder / "calib.npz",
               "--target", "cortex-m7", "-o", tmp_path / "c")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "c" / "report.json").read_text())["quantization"]["weights"] == "int4"
    assert "q_conv4_compact(" in (tmp_path / "c" / "model.c").read_text()
    p = edgecc(path, "--weights", "int4")
    assert p.returncode == 2 and p.stderr.strip() == "edgecc: error: --weights goes with --quantize int8"
    p = edgecc(path, "--quantize", "int8", "--weights", "auto", "--calibration", folder / "calib.npz",
               "--target", "cortex-m7", "--flash", "100", "-o", tmp_path / "d")
    assert p.returncode == 2 and "needs at least" in p.stderr and "--flash 100 given" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "d").exists()
