"""The delegate backend end to end: --target edgetpu on the MLPerf int8 models and the zoo's QDQ
models, the whole program (CPU islands in C, partitions through the reference delegate) against
onnxruntime, every partition's TFLite in LiteRT against edgecc's values at its boundary, reasons for
every CPU layer, and the cost model against single-cut."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from conftest import mlperf_path

pytestmark = pytest.mark.slow
ZOO_QDQ = ["cnn_nchw_qdq", "conv1d_qdq", "mobile_hswish_resize_qdq"]
MLPERF_INT8 = ["kws_int8", "vww_int8", "ic_int8", "ad_int8"]


# quantized here the way the zoo's QDQ models are (source, pre-processed): the tiny transformers
# (LayerNorm, GELU, attention), and the CNN quantized without pre-processing, which leaves its
# BatchNormalization a layer of its own after the stem conv (the Edge TPU maps none)
EXTRA_QDQ = {"transformer_qdq": ("transformer_fp32", True), "transformer_gelu20_qdq": ("transformer_gelu20_fp32", True),
             "cnn_unfused_bn_qdq": ("cnn_nchw_fp32", False)}
TRANSFORMERS_QDQ = ["transformer_qdq", "transformer_gelu20_qdq"]


@pytest.fixture(scope="module")
def extra_qdq(tmp_path_factory):
    import onnx
    import make_models

    out = tmp_path_factory.mktemp("extra_qdq")
    paths = {}
    for name, (src, preprocess) in EXTRA_QDQ.items():
        path = out / f"{name}.onnx"
        onnx.save(make_models.quantize_qdq(make_models.FLOAT_BUILDERS[src](), preprocess), str(path))
        make_models.write_golden(path)
        paths[name] = path
    return paths


def model_path(name, zoo, extra_qdq=None):
    if name in MLPERF_INT8:
        return mlperf_path(name)
    return str((extra_qdq or {}).get(name) or zoo[name])


def compiled(path, tmp_path, mode="cost"):
    from edgecc.compiler.driver import compile as compile_model

    out = tmp_path / f"c_{mode}"
    art = compile_model(path, target="edgetpu", outdir=str(out), emit="c", partition=mode)
    return art, json.loads((out / "report.json").read_text()), out


@pytest.mark.parametrize("name", MLPERF_INT8 + ZOO_QDQ + TRANSFORMERS_QDQ + ["cnn_unfused_bn_qdq"])
def test_whole_program_and_every_partition_match(name, zoo, extra_qdq):
    """edgecc verify --target edgetpu: outputs within 1 LSB of onnxruntime (float interfaces: 2% of
    the range), and each partition's .tflite in LiteRT within 1 LSB of edgecc at its boundary."""
    from edgecc.compiler.verify import verify

    path = model_path(name, zoo, extra_qdq)
    out = io.StringIO()
    ok = verify(path, target="edgetpu", data=path.replace(".onnx", ".npz"), out=out)
    assert ok, out.getvalue()
    assert "LiteRT vs edgecc" in out.getvalue() or "no partitions" in out.getvalue()


@pytest.mark.parametrize("name", MLPERF_INT8 + ZOO_QDQ + TRANSFORMERS_QDQ + ["cnn_unfused_bn_qdq"])
def test_every_cpu_layer_has_its_reason_and_partitions_are_listed(name, zoo, extra_qdq, tmp_path):
    art, report, out = compiled(model_path(name, zoo, extra_qdq), tmp_path)
    entries = report["partitions"]
    for e in entries:
        if e["device"] == "cpu":
            assert set(e["reasons"]) == set(e["ops"]) and all(e["reasons"].values()), e
        else:
            assert (out / e["file"]).stat().st_size > 0 and e["ops"] and e["macs"] >= 0
    mapping = (out / "mapping.txt").read_text()
    assert mapping.startswith("Operator") and "Count" in mapping
    mapped = sum(int(line.split()[1]) for line in mapping.splitlines()[2:] if "Mapped to Edge TPU" in line)
    assert mapped == sum(len(e["ops"]) for e in entries if e["device"] == "delegate")


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_a_whole_model_partition_in_litert_matches_onnxruntime(name, tmp_path):
    """Where one partition is the whole model, LiteRT runs the file on the golden input within 1 LSB
    of onnxruntime's golden output."""
    from edgecc.backends.delegate.litert_check import run_litert

    path = mlperf_path(name)
    _, report, out = compiled(path, tmp_path)
    (entry,) = report["partitions"]
    assert entry["device"] == "delegate"
    gold = np.load(path.replace(".onnx", ".npz"))
    got = run_litert((out / entry["file"]).read_bytes(), [gold["input"]])
    diff = np.abs(got[0].astype(np.int64).reshape(-1) - gold["output"].astype(np.int64).reshape(-1))
    assert diff.max() <= 1, f"{name}: LiteRT differs from onnxruntime by up to {diff.max()} LSB"


def delegated(path, tmp_path, mode) -> list:
    _, report, _ = compiled(path, tmp_path, mode)
    return [e for e in report["partitions"] if e["device"] == "delegate"]


ALL_MODELS = MLPERF_INT8 + ZOO_QDQ + TRANSFORMERS_QDQ + ["cnn_unfused_bn_qdq"]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_cost_model_puts_at_least_single_cut_macs_on_the_delegate_where_that_pays(name, zoo, extra_qdq, tmp_path):
    """At least single-cut's MACs, unless single-cut's partition costs more on the accelerator (round trip
    included) than on the CPU by the target's figures: then the cost model rightly keeps it home."""
    path = model_path(name, zoo, extra_qdq)
    cost, cut = delegated(path, tmp_path, "cost"), delegated(path, tmp_path, "single-cut")
    if sum(e["macs"] for e in cost) < sum(e["macs"] for e in cut):
        assert all(e["estimate"]["delegate_us"] >= e["estimate"]["cpu_us"] for e in cut), (cost, cut)


@pytest.mark.parametrize("name", ["cnn_unfused_bn_qdq", "mobile_hswish_resize_qdq"])
def test_cost_model_puts_more_where_unsupported_ops_sit_in_the_middle(name, zoo, extra_qdq, tmp_path):
    path = model_path(name, zoo, extra_qdq)
    cost, cut = delegated(path, tmp_path, "cost"), delegated(path, tmp_path, "single-cut")
    assert sum(e["macs"] for e in cost) > sum(e["macs"] for e in cut)
    assert len(cost) > 1  # partitions on both sides of the unsupported layer


def test_a_model_with_no_supported_op_runs_on_the_cpu_with_reasons(zoo, tmp_path):
    from edgecc.compiler.verify import verify

    path = str(zoo["cnn_nchw_fp32"])
    _, report, _ = compiled(path, tmp_path)
    (entry,) = report["partitions"]
    assert entry["device"] == "cpu"
    assert any("int8/uint8 only" in why for why in entry["reasons"].values())
    assert verify(path, target="edgetpu", data=path.replace(".onnx", ".npz"), out=io.StringIO())


def test_generated_c_builds_with_the_makefile_and_without_the_reference(tmp_path, zoo):
    """The Makefile builds the library with the reference delegate; defining NAME_DELEGATE_EXTERNAL
    leaves the reference out, so the vendor's implementation is what links."""
    import subprocess

    _, _, out = compiled(str(zoo["mobile_hswish_resize_qdq"]), tmp_path)
    flags = "-O2 -std=c99 -Wall -Wextra -Werror"
    p = subprocess.run(["make", "-s", f"CFLAGS={flags}"], cwd=out, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    ref = out / "reference" / "model_delegate_ref.c"
    obj = tmp_path / "ref.o"
    p = subprocess.run(["cc", *flags.split(), "-DMODEL_DELEGATE_EXTERNAL", "-c", str(ref), "-o", str(obj)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    nm = subprocess.run(["nm", str(obj)], capture_output=True, text=True).stdout
    assert "model_delegate_invoke" not in nm


@pytest.mark.parametrize("name", MLPERF_INT8 + ZOO_QDQ + TRANSFORMERS_QDQ + ["cnn_unfused_bn_qdq"])
def test_whole_program_under_the_sanitizers(name, zoo, extra_qdq, tmp_path):
    """The whole program (CPU layers, the partitions' blobs, the reference delegate) built with the strict
    warnings under AddressSanitizer and UBSan, within 1 LSB of onnxruntime (float outputs: 2% of the range)."""
    from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS, build_and_run

    path = model_path(name, zoo, extra_qdq)
    art, _, out = compiled(path, tmp_path)
    gold = np.load(path.replace(".onnx", ".npz"))
    ins = [gold[k] for k in sorted(gold.files) if k.startswith("input")]
    want = [gold[k] for k in sorted(gold.files) if k.startswith("output")]
    got = build_and_run(str(out), art.graph, ins, cflags=STRICT_CFLAGS + SANITIZE_CFLAGS + ["-O0"])
    for y, ref in zip(got, want):
        diff = np.abs(y.astype(np.float64).reshape(-1) - ref.astype(np.float64).reshape(-1)).max()
        limit = 0.02 * float(ref.max() - ref.min()) if ref.dtype.kind == "f" else 1
        assert diff <= limit, f"{name}: differs from onnxruntime by {diff} (limit {limit})"
