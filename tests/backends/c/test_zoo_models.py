"""Our own test models (CNNs, 1-D convs, a transformer, hard-swish/resize, QDQ with a float
interface, hostile names) through the C backend, against onnxruntime's outputs: the host's C and the
Cortex-M7's (channels-last layouts, DSP-extension and compact kernels, in-place layers), each built
once, with the strict warnings under AddressSanitizer and UBSan (at -O0, which checks the same accesses
at a fraction of an instrumented -O2 build's time)."""
import os

import numpy as np
import pytest

from conftest import have_gcc

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_gcc(), reason="needs gcc")]
ZOO = ["cnn_nchw_fp32", "conv1d_fp32", "transformer_fp32", "transformer_gelu20_fp32", "mobile_hswish_resize_fp32",
       "cnn_nchw_qdq", "conv1d_qdq", "mobile_hswish_resize_qdq", "hostile_names_fp32", "digits_cnn_fp32"]


def sanitized_cflags():
    from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS

    return STRICT_CFLAGS + SANITIZE_CFLAGS + ["-O0"]


def run_c(path, tmp_path, cflags=None, target="host"):
    from edgecc.backends.c.runner import STRICT_CFLAGS, build_and_run
    from edgecc.compiler.driver import compile as compile_model

    out = str(tmp_path / "c")
    art = compile_model(str(path), target=target, outdir=out, emit="c")
    d = np.load(str(path)[:-5] + ".npz")
    ins = [d[k] for k in sorted(d.files) if k.startswith("input")]
    outs = [d[k] for k in sorted(d.files) if k.startswith("output")]
    return out, build_and_run(out, art.graph, ins, cflags=cflags or STRICT_CFLAGS), outs


@pytest.mark.parametrize("target", ["host", "cortex-m7"])
@pytest.mark.parametrize("name", ZOO)
def test_matches_onnxruntime(zoo, name, target, tmp_path):
    _, got, want = run_c(zoo[name], tmp_path, sanitized_cflags(), target)
    qdq = name.endswith("_qdq")
    for y, ref in zip(got, want):
        span = float(ref.max() - ref.min()) or 1.0
        limit = (0.02 if qdq else 1e-3) * span
        assert np.max(np.abs(y.astype(np.float64) - ref)) <= limit


def test_hostile_names_stay_out_of_the_source(zoo, tmp_path):
    out, got, want = run_c(zoo["hostile_names_fp32"], tmp_path, sanitized_cflags())
    for y, ref in zip(got, want):
        assert np.allclose(y, ref, rtol=1e-3, atol=1e-4)
    for fname in os.listdir(out):
        if fname.endswith((".c", ".h")):
            text = open(os.path.join(out, fname), encoding="utf-8").read()
            assert text.isascii(), fname
            for bad in ('"', "\\", "??/", "/* /*", "%n"):
                body = text.replace('#include "model.h"', "").replace('extern "C"', "")
                assert bad not in body, (fname, bad)
