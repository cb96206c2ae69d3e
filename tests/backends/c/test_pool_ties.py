"""An int8 average pool whose real average is an exact half, on a real model: ic_int8 (MLPerf Tiny's ResNet-8)
with half the output channels of its shortcut convs zeroed end to end (bench/prune.py --channels 0.5). One
channel of its 8x8 average pool sums to 5.5 steps exactly; onnxruntime, which keeps that AveragePool in float
here, sums the dequantized values in float32 to 5.4999995 and QuantizeLinear rounds that to 5 before adding the
zero point -128. Rounding after adding the zero point, rint(-122.5000005) in float32, is rint(-122.5) = -122:
one step at the pool, 6 at the softmax. The generated C and the interpreter must give onnxruntime's codes."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from conftest import ROOT, have_gcc, load_cbench, mlperf_path
from edgecc.compiler import driver
from edgecc.ir.interp import run

pytestmark = pytest.mark.skipif(not have_gcc(), reason="needs gcc")


@pytest.fixture(scope="module")
def ic_half(tmp_path_factory):
    import onnx
    import onnxruntime as ort

    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import prune

    folder = tmp_path_factory.mktemp("ic_half")
    model = onnx.load(mlperf_path("ic_int8"))
    assert prune.zero_channels(model, 0.5)
    path = str(folder / "ic_half.onnx")
    onnx.save(model, path)
    x = np.load(mlperf_path("ic_int8", "npz"))["input"]
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.savez(folder / "golden.npz", input_0=x, output_0=y)
    return path, x, y, str(folder / "golden.npz")


def test_the_pool_rounds_as_onnxruntime_and_the_c_matches_it(ic_half, tmp_path):
    path, x, y, golden = ic_half
    art = driver.compile(path, target="host", outdir=str(tmp_path / "c"), emit="c")
    np.testing.assert_array_equal(run(art.graph, [x])[0], y)
    res = load_cbench().run("host", str(tmp_path / "c"), golden, "model", 1, ["-Wall", "-Wextra", "-Werror"])
    assert res["ok"] and res["maxdiff"] == 0, res


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m55"])
def test_on_the_emulated_cores(ic_half, tmp_path, target):
    """The compact average pool of the M7 and its Helium form on the M55, in QEMU."""
    import shutil

    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs the Arm toolchain and QEMU")
    from edgecc.backends.c import emulator

    path, x, y, _ = ic_half
    art = driver.compile(path, target=target, outdir=str(tmp_path / "c"), emit="c")
    got = emulator.build_and_run(str(tmp_path / "c"), art.graph, [x], target).outputs[0]
    np.testing.assert_array_equal(got.reshape(y.shape), y)
