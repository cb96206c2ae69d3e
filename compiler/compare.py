"""`edgecc compare MODEL --targets a,b,c`: one model on several targets, side by side.

Each target gets the compile it would get on its own (driver.compile with emit="c", into a temporary
folder), and its report.json gives the row: the estimated latency and energy per inference
(compiler/energy.py, report.json "energy"), RAM (the arena and the stack the budget keeps), flash (the
weights' bytes and an accelerator's partition models; code is not counted) and the share of the MACs
an accelerator runs. A target the model cannot be compiled for gets a row with the reason. The rows are a table for the terminal and a page,
compare.html, that draws them (compiler/report_html.py's page, plotly inline).
"""
from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Optional

from plotly.subplots import make_subplots

from edgecc.ir.errors import EdgeccError

from .report_html import figure, page

HEAD = ("target", "latency (ms)", "RAM (bytes)", "flash: weights (bytes)", "energy (uJ)", "MACs on accelerator")


@dataclass
class Row:
    """One target's figures, or why it has none (`error`)."""

    target: str
    latency_us: Optional[float] = None
    ram_bytes: Optional[int] = None
    weight_bytes: Optional[int] = None
    energy_uj: Optional[float] = None
    accelerator_share: Optional[float] = None  # of the MACs, 0 to 1
    error: str = ""


def row_of(target: str, report: dict, partition_bytes: int = 0) -> Row:
    """A target's row from its report.json (a dict); `partition_bytes`: the accelerator's models the program
    embeds (their weights are not in the report's weight_bytes)."""
    mem, energy = report["memory"], report.get("energy")
    row = Row(target, ram_bytes=mem["arena_bytes"] + mem["stack_reserve"],
              weight_bytes=report["weight_bytes"] + partition_bytes)
    if energy:
        row.latency_us, row.energy_uj = energy["time_us"], energy["total_uj"]
        row.accelerator_share = energy["accelerator_macs"] / energy["macs"] if energy["macs"] else 0.0
    return row


def compare(model: str, targets: list, progress=None, **options) -> list:
    """A Row per target, in the order given; `options` are driver.compile's (input_shapes, optimize, ...).
    An unknown target name is an EdgeccError before anything is compiled."""
    from edgecc.backends.registry import get_target

    from .driver import compile as compile_model

    if not targets:
        raise EdgeccError("--targets names no target")
    for name in targets:
        get_target(name)
    rows = []
    work = tempfile.mkdtemp(prefix="edgecc-compare-")
    try:
        for done, name in enumerate(targets):
            if progress is not None:
                progress("compiling", done, len(targets))
            out = os.path.join(work, name)
            try:
                compile_model(model, target=name, outdir=out, emit="c", **options)
            except EdgeccError as e:
                rows.append(Row(name, error=str(e)))
                continue
            with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
                report = json.load(f)
            if "memory" not in report:  # a backend that plans no memory (tensorrt: an engine plan)
                backend = get_target(name).backend
                rows.append(Row(name, error=f"the {backend} backend reports no memory plan nor energy"))
                continue
            blobs = sum(os.path.getsize(os.path.join(out, p["file"])) for p in report.get("partitions", [])
                        if p.get("file"))
            rows.append(row_of(name, report, blobs))
        if progress is not None:
            progress("compiling", len(targets), len(targets))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _cells(r: Row) -> tuple:
    if r.error:
        return (r.target, "-", "-", "-", "-", "-")
    known = r.energy_uj is not None
    return (r.target, f"{r.latency_us / 1e3:,.2f}" if known else "-", f"{r.ram_bytes:,}", f"{r.weight_bytes:,}",
            f"{r.energy_uj:,.1f}" if known else "-", f"{100 * r.accelerator_share:.0f} %" if known else "-")


def format_table(rows: list) -> str:
    """The rows as aligned text; a failed target's reason and a target without an energy table noted below."""
    cells = [HEAD] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEAD))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cs, widths))).rstrip()
             for cs in cells]
    lines += [f"{r.target}: {r.error}" for r in rows if r.error]
    lines += [f"{r.target}: no energy estimate (its target file has no [energy] table)"
              for r in rows if not r.error and r.energy_uj is None]
    lines.append("latency and energy are estimates (report.json \"energy\" \"assumptions\"); RAM: arena and stack")
    return "\n".join(lines) + "\n"


def render_html(model: str, rows: list) -> str:
    """compare.html: the figures as bars, one per target, and the table."""
    shown = [r for r in rows if not r.error]
    names = [r.target for r in shown]
    fig = make_subplots(rows=1, cols=4, subplot_titles=("estimated latency (ms)", "estimated energy (uJ)",
                                                        "RAM: arena and stack (bytes)", "MACs on an accelerator (%)"))
    for col, values in enumerate(([None if r.latency_us is None else r.latency_us / 1e3 for r in shown],
                                  [r.energy_uj for r in shown], [r.ram_bytes for r in shown],
                                  [None if r.accelerator_share is None else 100 * r.accelerator_share for r in shown]),
                                 1):
        fig.add_bar(x=names, y=values, row=1, col=col, showlegend=False, marker_color="#2e86c1")
    fig.update_layout(height=420)
    table = "<table><tr>" + "".join(f"<th>{h}</th>" for h in HEAD) + "</tr>\n" + "\n".join(
        "<tr>" + "".join(f'<td{"" if i == 0 else " class=n"}>{html.escape(c)}</td>' for i, c in enumerate(_cells(r)))
        + "</tr>" for r in rows) + "\n</table>"
    notes = "".join(f"<p>{html.escape(r.target)}: {html.escape(r.error)}</p>" for r in rows if r.error)
    title = os.path.basename(model)
    return page(f"{title}: targets compared", [
        f"<h1>{html.escape(title)} on {len(rows)} targets</h1>",
        '<p class="note">Each target compiled as it would be on its own. Latency and energy are estimates: the '
        "figures each target file states (run current, instructions per MAC, energy per byte; report.json "
        '"energy" "assumptions"), times what each layer counts. Flash counts the weights, not the code.</p>',
        figure(fig, "compare"), table, notes])
