"""report.html: report.json drawn, one self-contained page (plotly.js inline, nothing fetched at view time).

What a reader would rather look at than read, per layer in execution order:
  * the work, its time and its cost: MACs, the estimated time, the estimated energy (the arithmetic and
    the memory traffic stacked) and the bytes each memory serves (compiler/energy.py);
  * the bytes live while each layer runs against the SRAM budget, the arena and its lower bound
    (compiler/memory/report.py), the peak in red and the layers computed in strips in green;
  * where each layer runs (CPU or accelerator partition), in what precision, and the density of its
    weights, when the build has them;
then the energy model's assumptions and the layer table. Hovering a bar names its layer.

The figures are plotly's; their divs have fixed ids and plotly.js is inlined once, so the same
report.json gives the same page byte for byte.
"""
from __future__ import annotations

import html
import json
import os

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

PEAK, STRIPS, PLAIN = "#c0392b", "#27ae60", "#2e86c1"
MEMORY_COLORS = {"flash": "#8e44ad", "sram": "#2e86c1", "dram": "#d35400", "link": "#16a085"}
STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px} p,td{overflow-wrap:anywhere}
td,th{padding:2px 8px} .n{text-align:right}
table{border-collapse:collapse} tr:nth-child(even){background:#f3f3f3} .note{color:#555}"""


def page(title: str, parts: list) -> str:
    """A whole HTML page: plotly.js inline in its head, then `parts` (HTML strings) in order."""
    body = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
{body}
</body></html>
"""


def figure(fig, div_id: str) -> str:
    """One plotly figure as a div with a fixed id (the page already holds plotly.js)."""
    fig.update_layout(template="plotly_white", margin=dict(l=70, r=20, t=40, b=40))
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _hover(layers: list) -> list:
    return [f"{i}: {html.escape(r['name'])} ({r['op']})" for i, r in enumerate(layers)]


def _work_figure(report: dict) -> str:
    """MACs, time, energy and bytes served, per layer: four bar charts sharing the layer axis."""
    energy = report["energy"]
    rows = energy["layers"]
    steps = list(range(len(rows)))
    names = _hover(rows)
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=("MACs (halo recomputation included)", "estimated time (us)",
                                        "estimated energy (uJ)", "bytes served per memory"))
    fig.add_bar(x=steps, y=[r["macs"] for r in rows], name="MACs", marker_color="#555", hovertext=names,
                row=1, col=1, showlegend=False)
    fig.add_bar(x=steps, y=[r["time_us"] for r in rows], name="time", marker_color="#7f8c8d", hovertext=names,
                row=2, col=1, showlegend=False)
    fig.add_bar(x=steps, y=[r["macs_uj"] for r in rows], name="arithmetic (instructions)", marker_color="#e67e22",
                hovertext=names, row=3, col=1)
    fig.add_bar(x=steps, y=[r["memory_uj"] for r in rows], name="memory traffic and stalls", marker_color="#2c3e50",
                hovertext=names, row=3, col=1)
    for memory in sorted({m for r in rows for m in r["bytes"]}):
        fig.add_bar(x=steps, y=[r["bytes"].get(memory, 0) for r in rows], name=f"bytes from {memory}",
                    marker_color=MEMORY_COLORS.get(memory), hovertext=names, row=4, col=1)
    fig.update_layout(barmode="stack", height=900, legend=dict(orientation="h", y=-0.06))
    fig.update_xaxes(title_text="layer (execution order)", row=4, col=1)
    return figure(fig, "work")


def _memory_figure(report: dict) -> str:
    """The bytes live at each layer, with the arena, its lower bound and the budget as lines."""
    mem = report["memory"]
    steps = mem["timeline"]
    color = [PEAK if s["step"] == mem["peak_step"] else (STRIPS if s["op"] == "tiled" else PLAIN) for s in steps]
    hover = [f'{s["step"]}: {html.escape(s["layer"])} ({s["op"]}), {s["live_bytes"]:,} bytes live'
             + (f', scratch {s["scratch_bytes"]:,}' if s["scratch_bytes"] else "")
             + (", in place" if s["in_place"] else "")
             + (f', {s["rows_per_strip"]} rows per strip' if s["rows_per_strip"] else "") for s in steps]
    fig = go.Figure(go.Bar(x=[s["step"] for s in steps], y=[s["live_bytes"] for s in steps], marker_color=color,
                           hovertext=hover, hoverinfo="text", name="live bytes"))
    lines = [("arena", mem["arena_bytes"], "#555", "dash", "top right"),
             ("lower bound", mem["lower_bound"], "#999", "dot", "bottom right")]
    if mem["sram_budget"]:
        lines.append(("budget (SRAM less the stack)", mem["sram_budget"] - mem["stack_reserve"], "#d35400", "solid",
                      "top left"))
    for label, value, line_color, dash, where in lines:
        fig.add_hline(y=value, line_color=line_color, line_dash=dash,
                      annotation_text=f"{label}: {value:,} bytes", annotation_position=where)
    fig.update_layout(height=380, showlegend=False, xaxis_title="layer (execution order; red: the peak, green: "
                      "computed in strips)", yaxis_title="bytes live")
    return figure(fig, "memory")


def _placement_figure(report: dict) -> str | None:
    """Per layer: its device and precision (the MACs bar's colour) and its weights' density, when known."""
    layers = report["layers"]
    energy = report.get("energy")
    devices = [r["device"] for r in energy["layers"]] if energy else ["cpu"] * len(layers)
    dense = [(r.get("sparsity") or {}).get("density") for r in layers]
    if "accelerator" not in devices and all(d is None for d in dense) and len({r["dtype"] for r in layers}) < 2:
        return None
    names = _hover(layers)
    shown = [i for i, d in enumerate(dense) if d is not None]
    fig = make_subplots(rows=2 if shown else 1, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("MACs by device and precision", "weight density (non-zero fraction)"))
    groups = sorted({(d, r["dtype"]) for d, r in zip(devices, layers)})
    for device, dtype in groups:
        picked = [i for i, (d, r) in enumerate(zip(devices, layers)) if (d, r["dtype"]) == (device, dtype)]
        fig.add_bar(x=picked, y=[layers[i]["macs"] for i in picked], name=f"{device}, {dtype}",
                    hovertext=[names[i] for i in picked], row=1, col=1)
    if shown:
        fig.add_bar(x=shown, y=[dense[i] for i in shown], name="density", marker_color="#7f8c8d", showlegend=False,
                    hovertext=[f"{names[i]}: {layers[i]['sparsity'].get('pattern', '')}" for i in shown], row=2,
                    col=1)
        fig.update_yaxes(range=[0, 1.05], row=2, col=1)
    fig.update_layout(height=520 if shown else 320, barmode="stack", legend=dict(orientation="h", y=-0.12))
    fig.update_xaxes(title_text="layer (execution order)", row=2 if shown else 1, col=1)
    return figure(fig, "placement")


def _assumptions(energy: dict) -> str:
    rows = "\n".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                     for k, v in energy["assumptions"].items())
    return f"<table>{rows}</table>"


def _layer_table(report: dict) -> str:
    energy = report.get("energy")
    eby = energy["layers"] if energy else [None] * len(report["layers"])
    rows = []
    for s, layer, e in zip(report["memory"]["timeline"], report["layers"], eby):
        cells = [str(s["step"]), html.escape(s["layer"]), s["op"], layer["dtype"], f'{layer["macs"]:,}',
                 f'{s["live_bytes"]:,}', f'{s["scratch_bytes"]:,}', "yes" if s["in_place"] else "",
                 str(s["rows_per_strip"] or "")]
        cells += [f'{e["time_us"]:,.1f}', f'{e["uj"]:,.3f}'] if e else ["", ""]
        rows.append("<tr>" + "".join(f'<td{" class=n" if i in (4, 5, 6, 9, 10) else ""}>{c}</td>'
                                     for i, c in enumerate(cells)) + "</tr>")
    head = ("step", "layer", "op", "dtype", "MACs", "live bytes", "scratch", "in place", "rows per strip",
            "time (us)", "energy (uJ)")
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>\n" + "\n".join(rows) + "\n</table>"


def render_html(report: dict) -> str:
    """The page for one report.json (a dict)."""
    mem, energy = report["memory"], report.get("energy")
    budget = f'{mem["sram_budget"]:,} bytes' if mem["sram_budget"] else "none"
    summary = (f'Arena {mem["arena_bytes"]:,} bytes (lower bound {mem["lower_bound"]:,}: the most bytes live at any '
               f'one layer), peak at layer <b>{html.escape(mem["peak_layer"])}</b>; SRAM budget {budget}, of which '
               f'{mem["stack_reserve"]:,} bytes are kept for the stack. {report["macs"]:,} MACs, '
               f'{report["weight_bytes"]:,} bytes of weights.')
    parts = [f'<h1>{html.escape(report["model"])} on {html.escape(report["target"])}</h1>']
    if energy:
        share = energy["accelerator_macs"] / energy["macs"] if energy["macs"] else 0.0
        summary += (f' Estimated per inference: <b>{energy["total_uj"]:,.1f} uJ</b> in {energy["time_us"]:,.1f} us'
                    + (f', {100 * share:.1f} % of the MACs on the accelerator' if share else "")
                    + f'; {energy["average_uw_at_1_hz"]:,.1f} uW on average at one inference a second.')
    parts.append(f"<p>{summary} Hover a bar for its layer.</p>")
    if energy:
        parts += ["<h2>Per layer: work, time, energy and memory traffic</h2>",
                  '<p class="note">Estimates, not measurements: the figures the target file states, times what '
                  'each layer counts (see the assumptions below).</p>', _work_figure(report)]
    else:
        parts.append(f'<p class="note">No energy estimate: the target file of {html.escape(report["target"])} has '
                     "no [energy] table.</p>")
    parts += ["<h2>Live bytes per layer against the SRAM budget</h2>", _memory_figure(report)]
    placement = _placement_figure(report)
    if placement:
        parts += ["<h2>Where each layer runs, its precision and its weights' density</h2>", placement]
    if energy:
        parts += ["<h2>What the energy estimate assumes</h2>", _assumptions(energy)]
    parts += ["<h2>Layers</h2>", _layer_table(report)]
    return page(f'{report["model"]} on {report["target"]}: report', parts)


def write_html(outdir: str) -> str:
    """Write report.html next to report.json in `outdir`; return its path."""
    with open(os.path.join(outdir, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    path = os.path.join(outdir, "report.html")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(render_html(report))
    return path
