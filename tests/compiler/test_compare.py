"""`edgecc compare MODEL --targets a,b,c` (compiler/compare.py): a row per target from the compile that target
gets on its own, a table on the terminal and compare.html; a target that cannot take the model says why."""
import json
import os
import re

import pytest

from conftest import ROOT, edgecc, mlperf_path

KWS = os.path.join(ROOT, "examples", "kws_int8.onnx")


def table_rows(stdout: str) -> dict:
    """target -> its cells, from the table compare prints."""
    lines = stdout.splitlines()
    assert lines[0].split()[0] == "target"
    return {ln.split()[0]: ln.split() for ln in lines[1:]
            if ln and not ln.startswith(("latency", " ")) and ":" not in ln}


def test_each_row_is_what_the_targets_own_compile_reports(tmp_path):
    page = tmp_path / "cmp.html"
    p = edgecc("compare", KWS, "--targets", "cortex-m7,host", "-o", page)
    assert p.returncode == 0, p.stderr
    rows = table_rows(p.stdout)
    assert list(rows) == ["cortex-m7", "host"]
    q = edgecc(KWS, "--target", "cortex-m7", "-o", tmp_path / "m7")
    assert q.returncode == 0, q.stderr
    report = json.loads((tmp_path / "m7" / "report.json").read_text())
    mem, energy = report["memory"], report["energy"]
    latency_ms, ram, flash, uj = rows["cortex-m7"][1:5]
    assert float(latency_ms.replace(",", "")) == pytest.approx(energy["time_us"] / 1e3, abs=0.006)
    assert int(ram.replace(",", "")) == mem["arena_bytes"] + mem["stack_reserve"]
    assert int(flash.replace(",", "")) == report["weight_bytes"]
    assert float(uj.replace(",", "")) == pytest.approx(energy["total_uj"], abs=0.06)
    assert rows["host"][1] == "-" and "host: no energy estimate" in p.stdout  # host.toml has no [energy] table
    html = page.read_text()
    assert 'id="compare"' in html and "cortex-m7" in html and not re.search(r"<script[^>]*\bsrc=", html)


def test_an_unknown_target_is_refused_before_anything_is_compiled(tmp_path):
    page = tmp_path / "cmp.html"
    p = edgecc("compare", KWS, "--targets", "cortex-m7,nosuch", "-o", page)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "unknown target 'nosuch'" in p.stderr
    assert not page.exists() and p.stdout == ""


def test_a_target_that_cannot_take_the_model_gets_its_reason_and_the_others_their_rows():
    from edgecc.compiler.compare import compare, format_table

    rows = compare(KWS, ["cortex-m7", "tensorrt"])
    assert rows[0].error == "" and rows[0].energy_uj > 0
    assert "no memory plan" in rows[1].error and rows[1].energy_uj is None
    tight = compare(KWS, ["cortex-m7"], sram=2048)  # the Python API passes compile's options on
    assert "needs at least" in tight[0].error and f"cortex-m7: {tight[0].error}" in format_table(tight)


@pytest.mark.slow
def test_kws_int8_on_three_cortex_m_targets(tmp_path):
    p = edgecc("compare", mlperf_path("kws_int8"), "--targets", "cortex-m4,cortex-m7,cortex-m55",
               "-o", tmp_path / "compare.html")
    assert p.returncode == 0, p.stderr
    rows = table_rows(p.stdout)
    assert list(rows) == ["cortex-m4", "cortex-m7", "cortex-m55"]
    assert all(r[-2] == "0" and r[-1] == "%" for r in rows.values())  # no accelerator on these
    assert (tmp_path / "compare.html").exists()
