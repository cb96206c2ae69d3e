"""`edgecc --quantize int8` on the command line: the report, the int8 header, one-line errors."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from conftest import edgecc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantize_cases import calibration, float_cnn  # noqa: E402

from edgecc.compiler.cli import main  # noqa: E402


@pytest.fixture
def model(tmp_path):
    np.savez(tmp_path / "calib.npz", **calibration(16))
    return float_cnn(tmp_path / "cnn.onnx")


def test_report_on_stdout(tmp_path, model):
    p = edgecc(model, "--quantize", "int8", "--calibration", tmp_path / "calib.npz", "--emit", "report",
               "--keep-float", "conv3")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # no progress bar: stderr is not a terminal
    out = p.stdout
    assert "calibration: minmax on 16 samples; interface: float" in out
    assert "end-to-end SQNR: logits " in out and "prob " in out
    assert "conv3 (conv): kept float (--keep-float)" in out
    for layer in ("conv1", "residual", "pool", "gap", "fc", "softmax"):
        assert f"\n{layer} " in out


def test_int8_interface_header_and_report_json(tmp_path, model):
    out = tmp_path / "c"
    p = edgecc(model, "--quantize", "int8", "--calibration", tmp_path / "calib.npz", "--io", "int8",
               "--calibration-method", "percentile", "-o", out)
    assert p.returncode == 0, p.stderr
    header = (out / "model.h").read_text()
    assert "#define MODEL_INPUT_0_SCALE 0.0039" in header and "#define MODEL_INPUT_0_ZERO_POINT (-128)" in header
    assert "#define MODEL_OUTPUT_1_SCALE 0.00390625f" in header and "#define MODEL_OUTPUT_1_ZERO_POINT (-128)" in header
    report = json.loads((out / "report.json").read_text())["quantization"]
    assert report["io"] == "int8" and report["calibration"]["method"] == "percentile"
    assert [e["output"] for e in report["end_to_end"]] == ["logits", "prob"]


@pytest.mark.parametrize("args, message", [
    (["--calibration", "calib.npz"], "--calibration goes with --quantize int8"),
    (["--io", "int8"], "--io goes with --quantize int8"),
    (["--quantize", "int8"], "needs calibration samples: --calibration DATA.npz"),
    (["--quantize", "int8", "--calibration", "gone.npz"], "gone.npz: no such calibration file"),
    (["--quantize", "int8", "--calibration", "calib.npz", "--keep-float", "relu1"],
     "--keep-float: no layer named 'relu1'"),
    (["--quantize", "int8", "--calibration", "calib.npz", "--emit", "onnx"], "needs an output file"),
])
def test_user_errors_are_one_line(tmp_path, model, args, message, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # in process (fast): main() is what the console script runs
    out = [] if "--emit" in args else ["-o", str(tmp_path / "out")]
    assert main([model, *args, *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgecc: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_bad_calibration_shape_names_the_array(tmp_path, model):
    np.savez(tmp_path / "flat.npz", x=np.zeros((4, 8, 8, 2), np.float32))
    p = edgecc(model, "--quantize", "int8", "--calibration", tmp_path / "flat.npz", "-o", tmp_path / "out")
    assert p.returncode == 2
    assert "calibration array 'x' has shape [4,8,8,2], expected [N,1,2,8,8] or [N,2,8,8]" in p.stderr
    assert not (tmp_path / "out").exists()
