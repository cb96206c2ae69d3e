"""--sram, --flash and --emit report on the command line, in a subprocess: a budget that fits compiles
(tiling where it must), one that cannot fit is refused in one line naming the least that works and
the layer that needs it (exit 2, nothing written), and the report plots the memory per layer."""
import json
import re

import pytest

from conftest import edgecc, mlperf_path


def test_a_budget_too_small_is_refused_with_the_least_that_works(tmp_path):
    model = mlperf_path("vww_int8")
    p = edgecc(model, "--target", "cortex-m7", "--sram", "8K", "-o", tmp_path / "out")
    assert p.returncode == 2 and p.stdout == ""
    line = p.stderr
    assert line.count("\n") == 1, line
    m = re.fullmatch(r"edgecc: error: (.*): needs at least (\d+\.\d) KiB of SRAM \(layer '([^']+)'\); "
                     r"--sram 8K given\n", line)
    assert m, line
    assert m.group(1) == model and m.group(3) == "model/activation/Relu"  # the first conv: its input is 27 KiB
    assert 27.0 <= float(m.group(2)) <= 31.0
    assert not (tmp_path / "out").exists()


def test_a_budget_that_fits_compiles_and_reports(tmp_path):
    out = tmp_path / "kws"
    p = edgecc(mlperf_path("kws_int8"), "--target", "cortex-m7", "--sram", "10K", "--emit", "report", "-o", out)
    assert p.returncode == 0, p.stderr
    report = json.loads((out / "report.json").read_text())
    mem = report["memory"]
    assert mem["sram_budget"] == 10240 and mem["arena_bytes"] + mem["stack_reserve"] <= 10240
    assert mem["lower_bound"] <= mem["arena_bytes"] and len(mem["timeline"]) == len(report["layers"])
    assert max(s["live_bytes"] for s in mem["timeline"]) == mem["lower_bound"]
    html = (out / "report.html").read_text()  # the timeline drawn against the budget (compiler/report_html.py)
    assert 'id="memory"' in html
    assert f'budget (SRAM less the stack): {mem["sram_budget"] - mem["stack_reserve"]:,} bytes' in html
    assert (out / "model.c").exists()


@pytest.mark.parametrize("size", ["12abc", "-1K", "K"])
def test_a_size_must_read_as_bytes(tmp_path, size):
    p = edgecc(mlperf_path("ad_int8"), f"--sram={size}", "-o", tmp_path / "out")
    assert p.returncode == 2 and "--sram" in p.stderr and "expected a size" in p.stderr
    assert not (tmp_path / "out").exists()


def test_weights_over_the_flash_budget_are_refused(tmp_path):
    p = edgecc(mlperf_path("ad_int8"), "--target", "cortex-m7", "--flash", "64K", "-o", tmp_path / "out")
    assert p.returncode == 2
    flash = re.search(r": needs at least 26\d\.\d KiB of flash for its weights; --flash 64K given\n$", p.stderr)
    assert flash, p.stderr
    assert not (tmp_path / "out").exists()


def test_sizes():
    from edgecc.compiler.memory.budget import parse_size, size_text

    assert [parse_size(s) for s in ("40960", "40K", "40k", "40KiB", "1M", "1.5K", "2 MB")] == \
        [40960, 40960, 40960, 40960, 1048576, 1536, 2097152]
    assert [size_text(n) for n in (8192, 1048576, 1000)] == ["8K", "1M", "1000"]
