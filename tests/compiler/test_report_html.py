"""report.html (compiler/report_html.py): one self-contained page whose figures hold report.json's numbers;
and (slow) the page rendered by headless Chromium: no error on its console, every figure drawn."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, edgecc

KWS = os.path.join(ROOT, "examples", "kws_int8.onnx")
FIGURES = ("work", "memory")


@pytest.fixture(scope="module")
def kws_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "kws"
    p = edgecc(KWS, "--target", "cortex-m7", "--emit", "report", "-o", out)
    assert p.returncode == 0, p.stderr
    return out


def plotted(page: str, div_id: str) -> list:
    """The traces of the figure drawn into div `div_id` (the data of its Plotly.newPlot call)."""
    at = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', page).end()
    data, _ = json.JSONDecoder().raw_decode(page[at:])
    return data


def test_the_page_stands_alone_and_its_bars_are_the_reports_numbers(kws_report):
    page = (kws_report / "report.html").read_text()
    report = json.loads((kws_report / "report.json").read_text())
    assert not re.search(r"<script[^>]*\bsrc=", page) and "<link" not in page  # nothing fetched at view time
    assert all(f'id="{f}"' in page for f in FIGURES)
    traces = {t["name"]: t for t in plotted(page, "work")}
    energy = report["energy"]["layers"]
    assert traces["MACs"]["y"] == [r["macs"] for r in energy]
    arithmetic, memory = traces["arithmetic (instructions)"]["y"], traces["memory traffic and stalls"]["y"]
    assert [a + m for a, m in zip(arithmetic, memory)] == pytest.approx([r["uj"] for r in energy], abs=2e-6)
    assert traces["bytes from flash"]["y"] == [r["bytes"].get("flash", 0) for r in energy]
    live = plotted(page, "memory")[0]
    assert live["y"] == [s["live_bytes"] for s in report["memory"]["timeline"]]
    assert "What the energy estimate assumes" in page and "an estimate, not a measurement" in page


def test_the_same_report_gives_the_same_page(kws_report):
    from edgecc.compiler.report_html import render_html

    report = json.loads((kws_report / "report.json").read_text())
    assert render_html(report) == (kws_report / "report.html").read_text()


def test_a_target_without_an_energy_table_still_gets_its_memory_picture(tmp_path):
    p = edgecc(KWS, "--target", "host", "--emit", "report", "-o", tmp_path / "out")
    assert p.returncode == 0, p.stderr
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'id="memory"' in page and 'id="work"' not in page and "has no [energy] table" in page


# ---- in a browser ------------------------------------------------------------------------------
# recorded from the first script on: uncaught errors, rejected promises, console.error and console.warn
CATCH = """<script>
window.__problems = [];
addEventListener("error", e => __problems.push("error: " + e.message));
addEventListener("unhandledrejection", e => __problems.push("rejection: " + e.reason));
for (const k of ["error", "warn"]) {
  const f = console[k];
  console[k] = (...a) => { __problems.push(k + ": " + a.join(" ")); f.apply(console, a); };
}
addEventListener("load", () => setTimeout(() => { const p = document.createElement("pre"); p.id = "problems";
  p.textContent = JSON.stringify(__problems); document.body.appendChild(p); }, 0));
</script>"""


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return exe


def render(page_path, tmp_path) -> tuple:
    """(the DOM after the page ran, chromium's log): the page with CATCH first in its head, headless."""
    watched = tmp_path / "watched.html"
    watched.write_text(page_path.read_text().replace("<head>", "<head>" + CATCH, 1))
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=10000", "--dump-dom", watched.as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m7", "ethos-u55"])  # CPU layers; one accelerator partition
def test_report_html_renders_in_headless_chromium_without_console_errors(target, kws_report, tmp_path):
    if target != "cortex-m7":
        kws_report = tmp_path / target
        p = edgecc(KWS, "--target", target, "--emit", "report", "-o", kws_report)
        assert p.returncode == 0, p.stderr
    dom, log = render(kws_report / "report.html", tmp_path)
    problems = re.search(r'<pre id="problems">(.*?)</pre>', dom, re.S)
    assert problems, "the page's load handler never ran"
    assert json.loads(problems.group(1)) == []
    assert not [ln for ln in log.splitlines() if ":CONSOLE" in ln], log  # nothing at all on the console
    report = json.loads((kws_report / "report.json").read_text())
    figures = FIGURES + (("placement",) if 'id="placement"' in (kws_report / "report.html").read_text() else ())
    for div in figures:  # plotly drew each figure: its svg, and a bar per layer
        drawn = re.search(rf'<div id="{div}" class="[^"]*js-plotly-plot[^"]*".*?(?=<div id="|<h2>|$)', dom, re.S)
        assert drawn and drawn.group(0).count('class="main-svg"') >= 1, div
        assert drawn.group(0).count('class="point"') >= len(report["layers"]), div
