"""Op conformance: the ONNX backend node cases for the edge op set, compiled to C and run under
AddressSanitizer and UBSan.

Two bars: at least 95% of the cases match the golden outputs (numpy.allclose rtol 1e-3, atol 1e-5), and
no case that builds fails when it runs: under the sanitizers an out-of-bounds access, an overflow or
any other undefined behaviour aborts the program, and that is a bug whatever the case's numbers.
Each case is built once, at -O0 with the strict warnings: the sanitizers check the same accesses there,
and that build costs about a sixth more than the plain -O2 one (508 cases: 119 s against 103 s on two
cores), an instrumented -O2 build twice as much.
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
    """Compile one case to C, build it sanitized, run it, compare; returns (name, None) or (name, reason),
    the reason starting with "run:" when the built program failed."""
    from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS, build, run
    from edgecc.compiler.driver import compile as compile_model
    from edgecc.ir import EdgeccError

    name = os.path.basename(case_dir)
    d = np.load(os.path.join(case_dir, "golden.npz"))
    ins = [d[k] for k in sorted(d.files) if k.startswith("input")]
    outs = [d[k] for k in sorted(d.files) if k.startswith("output")]
    work = tempfile.mkdtemp(prefix="nodecase-")
    try:
        art = compile_model(os.path.join(case_dir, "model.onnx"), target="host", outdir=os.path.join(work, "c"),
                            emit="c")
        g = art.graph
        exe = build(os.path.join(work, "c"), work, len(g.inputs), len(g.outputs),
                    cflags=STRICT_CFLAGS + SANITIZE_CFLAGS + ["-O0"])
        try:
            got = run(exe, work, ins, [(v.type.np_dtype, v.type.shape) for v in g.outputs])
        except EdgeccError as e:
            return name, f"run: {e}"
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
    print(f"\nnode cases through C, sanitized: {len(results) - len(failed)}/{len(results)} pass ({rate:.1%})\n{report}")
    crashed = [f"  {n}: {why[-1500:]}" for n, why in failed if why.startswith("run:")]
    assert not crashed, "the sanitized C of these node cases failed at run time:\n" + "\n".join(crashed)
    assert rate >= PASS_RATE, f"{len(failed)} of {len(results)} node cases fail:\n{report}"
