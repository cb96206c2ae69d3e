"""The C backend's flash estimate (backends/c/flash.py), what --weights auto fits to --flash: its data part is
the bytes of the const arrays the C file holds, exactly; with the code from the target's [costs.code_bytes],
the whole is within -5 % and +20 % of the flash the cross compiler gives (on every Cortex-M target, when the
cross compiler is here)."""
from __future__ import annotations

import os
import re
import shutil
import sys

import numpy as np
import pytest

from edgecc.backends.registry import backend_for
from edgecc.compiler import driver
from edgecc.compiler.quantization import Quantization

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "compiler"))
from quantize_cases import calibration, float_cnn  # noqa: E402

SIZES = {"float": 4, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "uint16_t": 2, "int64_t": 8}


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flash")
    return float_cnn(folder / "cnn.onnx"), calibration(16)


def arrays_bytes(source: str) -> int:
    return sum(SIZES[t] * int(n) for t, n in re.findall(r"^static const (\w+) \w+\[(\d+)\] = \{", source, re.M))


@pytest.mark.parametrize("target", ["host", "cortex-m7", "cortex-m0plus"])
@pytest.mark.parametrize("weights", [None, "int8", "int4"])
def test_data_is_the_arrays_of_the_c_file(cnn, tmp_path, target, weights):
    path, calib = cnn
    q = None if weights is None else Quantization(calib, weights=weights)
    art = driver.compile(path, target=target, outdir=str(tmp_path / "c"), emit="c", quantize=q)
    est = backend_for(target).flash_bytes(art.graph)
    assert est["data"] == arrays_bytes((tmp_path / "c" / "model.c").read_text())
    assert est["total"] == est["data"] + est["code"]
    assert (est["code"] > 0) == (target != "host")  # the targets with a [costs.code_bytes] table


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m4", "cortex-m33", "cortex-m55", "cortex-m0plus"])
@pytest.mark.parametrize("weights", ["int8", "int4"])
def test_estimate_against_the_cross_compiler(cnn, tmp_path, weights, target):
    from edgecc.backends.c import emulator
    from edgecc.backends.registry import get_target

    path, calib = cnn
    art = driver.compile(path, target=target, outdir=str(tmp_path / "c"), emit="c",
                         quantize=Quantization(calib, weights=weights))
    t = get_target(target)
    obj = str(tmp_path / "model.o")
    emulator._compile(emulator.tool(t, "gcc"), [*t.cflags, *emulator.MODEL_CFLAGS, f"-I{tmp_path / 'c'}"],
                      str(tmp_path / "c" / "model.c"), obj)
    measured = emulator.flash_and_ram(emulator.section_sizes(t, [obj]))[0]
    est = backend_for(target).flash_bytes(art.graph)["total"]
    print(f"\n{target} {weights}: estimate {est}, measured {measured} ({est / measured:.3f})")
    assert 0.95 * measured <= est <= 1.2 * measured
