"""The hostile corpus (make_corpus.py: several hundred broken models made from kws_int8, ic_fp32 and
the zoo's transformer) through the command line, in process, each case within 60 seconds.

A case either compiles (exit 0: model.c and model.h in its output folder, nothing on stdout or
stderr; the C of every compiled case builds, and the ones that still compute what their source
computes, renamed values for instance, also pass `edgecc verify` against onnxruntime), or is refused
(exit 2: one stderr line `edgecc: error: FILE: ...` saying why, no traceback, nothing at -o). No
case writes outside its output folder: the corpus and the working directory are the same after
the run. A few cases run again through a real subprocess, end to end.
"""
import io
import os
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import edgecc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_corpus  # noqa: E402
from in_process import run_cli  # noqa: E402

pytestmark = pytest.mark.slow

TIME_LIMIT = 60  # seconds per case
SOURCES = ("kws_int8", "ic_fp32", "transformer_fp32")
# compiled cases whose model computes exactly what its source does (unique node names: onnxruntime
# refuses repeated ones), so onnxruntime must agree with the C
VERIFIED = ("hostile_name.values_comment_breakers", "hostile_name.values_newlines", "hostile_name.values_quotes",
            "hostile_name.values_generated_api", "hostile_name.values_sanitizer_collisions",
            "bad_dims.input_batch_minus1", "external_data.inside_the_folder",
            "opset_ir_version.default_domain_spelled_ai_onnx")
# end to end in a subprocess: (case, exit status)
SUBPROCESS = [("kws_int8.truncation.half", 2), ("ic_fp32.cycle.two_nodes", 2),
              ("kws_int8.hostile_name.invalid_utf8_node_name", 2), ("transformer_fp32.size_bomb.expand", 2),
              ("ic_fp32.external_data.symlink_out", 2), ("kws_int8.hostile_name.nodes_comment_breakers", 0)]


def problems_of(case, out_dir: str, status, stdout: str, stderr: str) -> list:
    """What is wrong with one case's outcome (nothing, when it compiled or was refused properly)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if status == 0:
        found = [f for f in ("model.c", "model.h") if not os.path.isfile(os.path.join(out_dir, f))]
        wrong = [f"compiled but {', '.join(found)} missing"] if found else []
        if case.must_refuse:
            wrong.append("compiled a model that must be refused")
        if lines or stdout:
            wrong.append(f"compiled but printed: {(stdout + stderr)[:200]!r}")
        return wrong
    if status != 2:
        return [f"exit status {status!r}; stderr: {stderr[-300:]!r}"]
    wrong = []
    prefix = f"edgecc: error: {case.path}: "
    if len(lines) != 1 or not lines[0].startswith(prefix) or len(lines[0]) <= len(prefix) + 10:
        wrong.append(f"stderr is not one line '{prefix}WHY': {stderr[:300]!r}")
    if "Traceback" in stderr:
        wrong.append("a traceback on stderr")
    if os.path.lexists(out_dir):
        wrong.append(f"refused but left {out_dir}")
    return wrong


def snapshot(folder: str) -> dict:
    """Every file and folder under `folder`: (size, modification time)."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            seen[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
    return seen


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Write the corpus, run every case, and keep per case: (case, output folder, exit status, problems),
    with the snapshots of the corpus and working folder before and after."""
    if not os.path.exists(os.path.join(make_corpus.MLPERF, "kws_int8.onnx")):
        pytest.skip(f"the MLPerf Tiny models are not in {make_corpus.MLPERF} (set EDGECC_SHARED)")
    root = tmp_path_factory.mktemp("hostile")
    folder, outs, cwd = str(root / "corpus"), str(root / "out"), str(root / "cwd")
    os.makedirs(cwd)
    cases = make_corpus.write_corpus(folder)
    before = snapshot(folder), snapshot(cwd)
    results, here = [], os.getcwd()
    os.chdir(cwd)  # a relative path written by mistake would land here
    try:
        for case in cases:
            out = os.path.join(outs, case.name)
            status, stdout, stderr = run_cli([case.path, "--target", "host", "-o", out], TIME_LIMIT)
            results.append((case, out, status, problems_of(case, out, status, stdout, stderr)))
    finally:
        os.chdir(here)
    after = snapshot(folder), snapshot(cwd)
    return {"results": results, "before": before, "after": after, "outs": outs}


def test_the_corpus_is_large_and_covers_every_kind_on_every_source(corpus):
    cases = [r[0] for r in corpus["results"]]
    assert len(cases) >= 200
    kinds = Counter((c.name.split(".")[0], c.kind) for c in cases)
    assert {(s, k) for s in SOURCES for k in make_corpus.KINDS} == set(kinds)
    assert len({c.name for c in cases}) == len(cases)


@pytest.mark.parametrize("kind", sorted(make_corpus.KINDS))
def test_every_case_compiles_or_is_refused_in_one_line(corpus, kind):
    found = [f"{case.name}: {p}" for case, _, _, problems in corpus["results"] if case.kind == kind
             for p in problems]
    assert not found, "\n".join(found)


def test_nothing_is_written_outside_the_output_folders(corpus):
    assert corpus["after"] == corpus["before"]
    compiled = {os.path.basename(out) for _, out, status, _ in corpus["results"] if status == 0}
    assert set(os.listdir(corpus["outs"])) == compiled  # no temporary folder left beside them


def test_the_c_of_every_compiled_case_builds(corpus):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    compiled = [out for _, out, status, _ in corpus["results"] if status == 0]
    assert compiled

    def build(out):
        run = subprocess.run([cc, "-std=c99", "-c", "model.c", "-o", os.devnull], cwd=out, capture_output=True,
                             text=True, timeout=120)
        return None if run.returncode == 0 else f"{out}: {run.stderr[:500]}"
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [f for f in pool.map(build, compiled) if f]
    assert not failed, "\n".join(failed)


def test_compiled_cases_that_compute_their_source_match_onnxruntime(corpus):
    pytest.importorskip("onnxruntime")
    from edgecc.compiler.verify import verify

    chosen = [case for case, _, status, _ in corpus["results"]
              if status == 0 and case.name.split(".", 1)[1] in VERIFIED]
    assert len(chosen) == len(SOURCES) * len(VERIFIED)
    report = io.StringIO()
    failed = [case.name for case in chosen if not verify(case.path, target="host", out=report)]
    assert not failed, report.getvalue()


@pytest.mark.parametrize("name,status", SUBPROCESS, ids=[n for n, _ in SUBPROCESS])
def test_a_real_subprocess_exits_and_prints_the_same(corpus, tmp_path, name, status):
    case = next(c for c, _, _, _ in corpus["results"] if c.name == name)
    out = tmp_path / "out"
    run = edgecc(case.path, "--target", "host", "-o", out, timeout=TIME_LIMIT)
    assert run.returncode == status, run.stderr
    assert "Traceback" not in run.stderr
    if status == 2:
        assert run.stderr.startswith(f"edgecc: error: {case.path}: ") and run.stderr.count("\n") == 1
        assert not out.exists()
    else:
        assert run.stderr == "" and (out / "model.c").is_file()
