"""Zero channels end to end on the MLPerf int8 models (bench/prune.py --channels 0.5): the build with
them removed computes onnxruntime's outputs on the pruned model, bit for bit, with fewer MACs; dense
models give the same C whether sparsity is on or off."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from conftest import ROOT, mlperf_path

pytestmark = pytest.mark.slow
sys.path.insert(0, os.path.join(ROOT, "bench"))


def pruned_model(stem, tmp_path):
    import onnx
    import onnxruntime as ort
    from prune import zero_channels

    model = onnx.load(mlperf_path(f"{stem}_int8"))
    assert zero_channels(model, 0.5)
    path = tmp_path / f"{stem}_half_channels.onnx"
    onnx.save(model, str(path))
    x = np.load(mlperf_path(f"{stem}_int8").replace(".onnx", ".npz"))["input"]
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.savez(str(path).replace(".onnx", ".npz"), input=x, output=s.run(None, {s.get_inputs()[0].name: x})[0])
    return str(path)


@pytest.mark.parametrize("stem", ["kws", "vww"])
def test_half_the_pointwise_channels_are_removed_exactly(stem, tmp_path):
    import io

    from edgecc.compiler.driver import compile as compile_model
    from edgecc.compiler.verify import verify

    path = pruned_model(stem, tmp_path)
    out = io.StringIO()
    assert verify(path, target="host", data=path.replace(".onnx", ".npz"), out=out), out.getvalue()
    assert " 0 LSB " in out.getvalue()
    reports = {}
    for mode in ("on", "off"):
        compile_model(path, target="cortex-m7", outdir=str(tmp_path / mode), emit="c", sparsity=mode)
        reports[mode] = json.loads((tmp_path / mode / "report.json").read_text())
    on, off = reports["on"], reports["off"]
    assert on["sparsity"]["macs_skipped"] == off["macs"] - on["macs"] > 0.4 * off["macs"]
    assert off["sparsity"]["macs_skipped"] == 0 and on["weight_bytes"] < 0.6 * off["weight_bytes"]
    assert sum(row.get("sparsity", {}).get("macs_skipped", 0) for row in on["layers"]) == on["sparsity"]["macs_skipped"]


def test_dense_models_give_the_same_c_with_sparsity_on_or_off(tmp_path):
    from edgecc.compiler.driver import compile as compile_model

    for mode in ("on", "off"):
        compile_model(mlperf_path("vww_int8"), target="cortex-m7", outdir=str(tmp_path / mode), emit="c", sparsity=mode)
    assert (tmp_path / "on" / "model.c").read_bytes() == (tmp_path / "off" / "model.c").read_bytes()
