"""Op conformance: the ONNX backend node cases for the edge op set, compiled to C and run.

The bar: at least 95% of the cases match the golden outputs (numpy.allclose rtol 1e-3, atol 1e-5).
"""
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from conftest import have_gcc

PASS_RATE = 0.95


def run_case(case_dir):
    """Compile one case to C, run it, compare; returns (name, None) or (name, reason)."""
    from edgecc.backends.c.runner import build_and_run
    from edgecc.compiler.driver import compile as compile_model

    name = os.path.basename(case_dir)
    d = np.load(os.path.join(case_dir, "golden.npz"))
    ins = [d[k] for k in sorted(d.files) if k.startswith("input")]
    outs = [d[k] for k in sorted(d.files) if k.startswith("output")]
    work = tempfile.mkdtemp(prefix="nodecase-")
    try:
        art = compile_model(os.path.join(case_dir, "model.onnx"), target="host", outdir=os.path.join(work, "c"),
                            emit="c")
        got = build_and_run(os.path.join(work, "c"), art.graph, ins)
        for i, (y, ref) in enumerate(zip(got, outs)):
            if y.shape != ref.shape and y.size == ref.size:
                y = y.reshape(ref.shape)
            if y.shape != ref.shape:
                return name, f"output {i}: shape {y.shape}, expected {ref.shape}"
            if not np.allclose(y.astype(np.float64), ref.astype(np.float64), rtol=1e-3, atol=1e-5, equal_nan=True):
                return name, f"output {i}: max diff {np.max(np.abs(y.astype(np.float64) - ref)):.3g}"
        return name, None
    except Exception as e:  # a failing case is a row in the report, not a crash of the run
        return name, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not have_gcc(), reason="needs gcc")
def test_node_cases_through_c(nodecases):
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(run_case, nodecases, chunksize=8))
    failed = [(n, why) for n, why in results if why]
    rate = 1 - len(failed) / len(results)
    report = "\n".join(f"  {n}: {why}" for n, why in failed)
    print(f"\nnode cases through C: {len(results) - len(failed)}/{len(results)} pass ({rate:.1%})\n{report}")
    assert rate >= PASS_RATE, f"{len(failed)} of {len(results)} node cases fail:\n{report}"
