"""--target ethos-u55 with Vela: every partition compiled by Vela with no CPU operator, its command
stream and weights in const arrays, and the generated Ethos-U glue (ethosu/model_delegate_ethosu.c)
driving a stand-in for the Ethos-U core driver (fake_ethosu/: checks each call as the driver would,
then computes the partition with edgecc's reference kernels at the addresses the command stream
uses), the whole program against onnxruntime's golden output under ASan and UBSan. QEMU models no
Ethos-U55, so the command streams themselves are not executed here."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import mlperf_path
from edgecc.backends.delegate.vela import vela_version

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(vela_version() is None, reason="ethos-u-vela is not installed (pip install ethos-u-vela)")]
FAKE = os.path.join(os.path.dirname(__file__), "fake_ethosu")


def compiled(path, out):
    from edgecc.compiler.driver import compile as compile_model

    compile_model(path, target="ethos-u55", outdir=str(out), emit="c")
    return json.loads((out / "report.json").read_text())


def fake_partitions_c(report) -> str:
    """The fake driver's table, from report.json (Vela's regions as vela.py read them)."""
    rows = []
    for k, e in enumerate(p for p in report["partitions"] if p["device"] == "delegate"):
        v = e["vela"]
        fmaps = v["regions"][3:]
        n_in = sum(r["points_at"].startswith("input:") for r in fmaps)
        api = f"model_{e['name']}"
        rows.append(f"{{ {api}_command_stream, {v['command_stream_bytes']}, {api}_weights, "
                    f"{v['regions'][0]['bytes']}, {v['scratch_bytes']}, {n_in}, {len(fmaps) - n_in}, "
                    f"{{ {', '.join(str(r['scratch_offset']) for r in fmaps)} }}, "
                    f"{{ {', '.join(str(r['bytes']) for r in fmaps)} }}, {api}_run }}")
    heads = "".join(f'#include "../reference/model_{e["name"]}.h"\n' for e in report["partitions"]
                    if e["device"] == "delegate")
    return ('#include "fake_partitions.h"\n#include "../model_delegate.h"\n' + heads +
            f"const struct fake_partition fake_partitions[] = {{\n  " + ",\n  ".join(rows) + "\n};\n"
            f"const int fake_num_partitions = {len(rows)};\n")


@pytest.mark.parametrize("stem", ["kws", "vww", "ic"])
def test_vela_maps_every_partition_and_the_ethosu_glue_runs_the_program(stem, tmp_path):
    from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS, build, run

    path = mlperf_path(f"{stem}_int8")
    out = tmp_path / "out"
    report = compiled(path, out)
    delegated = [e for e in report["partitions"] if e["device"] == "delegate"]
    assert delegated
    for e in delegated:
        v = e["vela"]
        assert v["cpu_operators"] == 0 and v["npu_operators"] > 0, e
        assert v["cycles"] > 0 and v["sram_bytes"] > 0 and v["command_stream_bytes"] % 4 == 0
        assert (out / v["file"]).read_bytes()[4:8] == b"TFL3"
    blobs = (out / "partitions" / "model_blobs.c").read_text()
    assert "model_p0_command_stream" in blobs and "model_p0_weights" in blobs
    header = (out / "model_delegate.h").read_text()
    for e in delegated:  # the NPU's scratch area is arena bytes handed to invoke
        assert f"#define MODEL_{e['name'].upper()}_NPU_SCRATCH_BYTES {e['vela']['scratch_bytes']}\n" in header

    # the whole program with the Ethos-U glue and the stand-in driver, on the host, sanitized
    fake = out / "fake_driver"
    shutil.copytree(FAKE, fake)
    (fake / "fake_partitions.c").write_text(fake_partitions_c(report))
    work = tmp_path / "build"
    work.mkdir()
    cflags = STRICT_CFLAGS + SANITIZE_CFLAGS + ["-DMODEL_DELEGATE_ETHOSU", f"-I{fake}"]
    exe = build(str(out), str(work), 1, 1, cflags=cflags)
    nm = subprocess.run(["nm", exe], capture_output=True, text=True).stdout
    assert "ethosu_invoke_v3" in nm and "model_p0_run" in nm
    gold = np.load(path.replace(".onnx", ".npz"))
    (got,) = run(exe, str(work), [gold["input"]], [(gold["output"].dtype, gold["output"].shape)])
    diff = np.abs(got.astype(np.int64) - gold["output"].astype(np.int64))
    assert diff.max() <= 1, f"{stem}: {diff.max()} LSB from onnxruntime"


def test_the_ethosu_glue_builds_for_the_cortex_m55(tmp_path):
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    out = tmp_path / "out"
    compiled(os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "kws_int8.onnx"), out)
    for src in ["ethosu/model_delegate_ethosu.c", "partitions/model_blobs.c", "model.c"]:
        p = subprocess.run([cc, "-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-std=c99", "-O2", "-Wall",
                            "-Wextra", "-Werror", "-DMODEL_DELEGATE_ETHOSU", f"-I{FAKE}", f"-I{out}", "-c", src,
                            "-o", str(tmp_path / "x.o")], cwd=out, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr


def test_without_the_glue_the_reference_delegate_still_runs(tmp_path):
    """The default build (no MODEL_DELEGATE_ETHOSU) keeps the reference delegate: edgecc verify."""
    import io

    from edgecc.compiler.verify import verify

    path = mlperf_path("kws_int8")
    out = io.StringIO()
    assert verify(path, target="ethos-u55", data=path.replace(".onnx", ".npz"), out=out), out.getvalue()


@pytest.mark.parametrize("name", ["cnn_nchw_qdq", "conv1d_qdq", "mobile_hswish_resize_qdq"])
def test_zoo_qdq_models_on_the_m55_and_vela(name, zoo, tmp_path):
    """Vela maps every partition whole (the mobile block's concat needs its run cut to 5 boundary
    tensors a partition), and the program with the reference delegate matches onnxruntime in QEMU."""
    import io

    from edgecc.compiler.verify import verify

    path = str(zoo[name])
    report = compiled(path, tmp_path / "out")
    delegated = [e for e in report["partitions"] if e["device"] == "delegate"]
    assert delegated
    for e in delegated:
        assert e["vela"]["cpu_operators"] == 0 and len(e["vela"]["regions"]) <= 8, e
    out = io.StringIO()
    assert verify(path, target="ethos-u55", data=path.replace(".onnx", ".npz"), out=out), out.getvalue()
