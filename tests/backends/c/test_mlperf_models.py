"""The MLPerf Tiny models through the C backend, measured by the acceptance harness (cbench.py):
float outputs within 1e-3 of the output range, int8 outputs within 1 LSB, warning-free under
-Wall -Wextra -Werror, and clean under AddressSanitizer and UBSan."""

import numpy as np
import pytest

from conftest import MLPERF_STEMS, have_gcc, load_cbench, mlperf_path

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_gcc(), reason="needs gcc")]
STRICT = ["-Wall", "-Wextra", "-Werror"]
SANITIZE = STRICT + ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


def compiled(stem, tmp_path):
    from edgecc.compiler.driver import compile as compile_model

    out = tmp_path / "c"
    compile_model(mlperf_path(stem), target="host", outdir=str(out), emit="c")
    return str(out)


def limit(stem):
    """The bar for this model's output: 1 LSB for int8, 1e-3 of the range for float."""
    if stem.endswith("int8"):
        return 1.0
    ref = np.load(mlperf_path(stem, "npz"))["output"].astype(np.float64)
    return 1e-3 * float(ref.max() - ref.min())


@pytest.mark.parametrize("stem", MLPERF_STEMS)
def test_matches_onnxruntime(stem, tmp_path):
    res = load_cbench().run("host", compiled(stem, tmp_path), mlperf_path(stem, "npz"), "model", 1, STRICT)
    assert res["ok"], res.get("error")
    assert res["maxdiff"] <= limit(stem), res


@pytest.mark.parametrize("stem", ["kws_int8", "ic_fp32", "ad_int8", "vww_int8"])
def test_sanitizers_clean(stem, tmp_path):
    res = load_cbench().run("host", compiled(stem, tmp_path), mlperf_path(stem, "npz"), "model", 1, SANITIZE)
    assert res["ok"], res.get("error")
    assert res["maxdiff"] <= limit(stem), res
