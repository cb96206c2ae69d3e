"""The memory part of report.json, and report.html: live bytes per layer plotted against the budget.

report.json's "memory" holds the arena, the lower bound it is measured against, the budget, and
the timeline: per layer (in execution order) the bytes live while it runs, its scratch, whether
it writes over its operand and, for a tiled layer, its rows per strip. report.html draws that
timeline as an inline SVG bar chart (no scripts, no external files) with the arena, the lower
bound and the budget as lines, so a user sees where the peak is and what sets it.
"""
from __future__ import annotations

import html
import json
import os

from .budget import kib


def memory_section(plan) -> dict:
    rows = []
    for i, op in enumerate(plan.order):
        rows.append(dict(step=i, layer=op.name, op=op.kind, live_bytes=plan.timeline[i],
                         scratch_bytes=plan.scratch.get(op, (0, 0))[1], in_place=op in plan.inplace,
                         rows_per_strip=op.attrs.get("rows", 0) if op.kind == "tiled" else 0))
    peak = plan.peak_op
    return dict(arena_bytes=plan.arena_bytes, lower_bound=plan.lower_bound, sram_budget=plan.budget,
                stack_reserve=plan.stack, peak_layer=peak.name if peak is not None else "",
                peak_step=plan.peak_step, timeline=rows)


WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 960, 360, 70, 40, 20


def _svg(mem: dict) -> str:
    steps = mem["timeline"]
    arena_budget = mem["sram_budget"] - mem["stack_reserve"] if mem["sram_budget"] else 0
    top = max([mem["arena_bytes"], arena_budget] + [s["live_bytes"] for s in steps] + [1])
    top = top * 1.08
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - BOTTOM - TOP
    bar = plot_w / max(len(steps), 1)

    def y(v):
        return TOP + plot_h * (1 - v / top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'font-family="sans-serif" font-size="11">',
           f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 10}" y2="{TOP + plot_h}" stroke="#444"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>']
    for k in range(5):
        v = top * k / 4
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{kib(int(v))}</text>')
    for s in steps:
        x = LEFT + s["step"] * bar
        color = "#c0392b" if s["step"] == mem["peak_step"] else ("#2e86c1" if s["op"] != "tiled" else "#27ae60")
        title = html.escape(f'{s["layer"]} ({s["op"]}): {s["live_bytes"]:,} bytes live'
                            + (f', scratch {s["scratch_bytes"]:,}' if s["scratch_bytes"] else "")
                            + (", in place" if s["in_place"] else "")
                            + (f', {s["rows_per_strip"]} rows per strip' if s["rows_per_strip"] else ""))
        out.append(f'<rect x="{x + bar * 0.1:.1f}" y="{y(s["live_bytes"]):.1f}" width="{bar * 0.8:.1f}" '
                   f'height="{TOP + plot_h - y(s["live_bytes"]):.1f}" fill="{color}"><title>{title}</title></rect>')
    lines = [("arena", mem["arena_bytes"], "#555", "4 3"), ("lower bound", mem["lower_bound"], "#999", "2 2")]
    if arena_budget:
        lines.append(("budget (SRAM less the stack)", arena_budget, "#d35400", ""))
    for label, v, color, dash in lines:
        out.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{WIDTH - 10}" y2="{y(v):.1f}" stroke="{color}" '
                   f'stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{WIDTH - 12}" y="{y(v) - 4:.1f}" text-anchor="end" fill="{color}">'
                   f'{label}: {v:,} bytes</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">layers in execution order '
               f'(red: the peak; green: computed in strips)</text>')
    out.append("</svg>")
    return "\n".join(out)


def render_html(report: dict) -> str:
    mem = report["memory"]
    rows = "\n".join(
        f'<tr><td>{s["step"]}</td><td>{html.escape(s["layer"])}</td><td>{s["op"]}</td>'
        f'<td class="n">{s["live_bytes"]:,}</td><td class="n">{s["scratch_bytes"]:,}</td>'
        f'<td>{"yes" if s["in_place"] else ""}</td><td class="n">{s["rows_per_strip"] or ""}</td></tr>'
        for s in mem["timeline"])
    budget = f'{mem["sram_budget"]:,} bytes' if mem["sram_budget"] else "none"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(report["model"])}: memory</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 8px}} .n{{text-align:right}}
table{{border-collapse:collapse}} tr:nth-child(even){{background:#f3f3f3}}</style></head>
<body>
<h1>{html.escape(report["model"])} on {html.escape(report["target"])}: memory</h1>
<p>Arena {mem["arena_bytes"]:,} bytes (lower bound {mem["lower_bound"]:,}: the most bytes live at any one layer),
peak at layer <b>{html.escape(mem["peak_layer"])}</b>; SRAM budget {budget}, of which {mem["stack_reserve"]:,}
bytes are kept for the stack. Hover a bar for its layer.</p>
{_svg(mem)}
<table><tr><th>step</th><th>layer</th><th>op</th><th>live bytes</th><th>scratch</th><th>in place</th>
<th>rows per strip</th></tr>
{rows}
</table>
</body></html>
"""


def write_html(outdir: str) -> str:
    """Write report.html next to report.json in `outdir`; return its path."""
    with open(os.path.join(outdir, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    path = os.path.join(outdir, "report.html")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(render_html(report))
    return path
