"""Issue 15's bar on MLPerf Tiny's visual wake words model (vww_fp32): calibrated (16 seeded standard-normal images,
as its golden input is drawn) and compiled with --weights int4 for the emulated Cortex-M7, it runs at most 1.8
instructions per MAC in at most 0.6x the flash of its int8 build; the 4-bit DSP kernels' integers are the host
build's (the same C on both)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import load_cbench, mlperf_path
from edgecc.compiler import driver
from edgecc.compiler.quantization import Quantization

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                                 reason="needs the Arm toolchain and QEMU")]


def test_vww_int4_on_the_m7(tmp_path):
    model, golden = mlperf_path("vww_fp32"), mlperf_path("vww_fp32", "npz")
    rng = np.random.default_rng(0)
    calib = {"input_1": rng.standard_normal((16, 1, 96, 96, 3)).astype(np.float32)}
    cbench = load_cbench()
    res = {}
    for weights in ("int8", "int4"):
        out = tmp_path / weights
        driver.compile(model, target="cortex-m7", outdir=str(out), emit="c",
                       quantize=Quantization(calib, weights=weights))
        res[weights] = cbench.run("m7", str(out), golden, "model", 1, ["-Wall", "-Wextra", "-Werror"])
        assert res[weights].get("ok") and res[weights]["argmax_eq"], res[weights]
    macs = json.loads((tmp_path / "int4" / "report.json").read_text())["macs"]
    per_mac = res["int4"]["insns"] / macs
    ratio = res["int4"]["flash"] / res["int8"]["flash"]
    print(f"\nvww int4: {res['int4']['insns']:,} instructions ({per_mac:.3f} a MAC of {macs:,}), flash "
          f"{res['int4']['flash']:,} ({ratio:.3f}x the int8 build's {res['int8']['flash']:,}; int8 "
          f"{res['int8']['insns'] / macs:.3f} a MAC)")
    assert per_mac <= 1.8
    assert ratio <= 0.6
    host = cbench.run("host", str(tmp_path / "int4"), golden, "model", 1, [])
    assert host["maxdiff"] == res["int4"]["maxdiff"] and host["exact_frac"] == res["int4"]["exact_frac"]
