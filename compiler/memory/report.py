"""The memory part of report.json: the arena, its lower bound, the budget and the bytes live per layer.

report.json's "memory" holds the arena, the lower bound it is measured against, the budget, and
the timeline: per layer (in execution order) the bytes live while it runs, its scratch, whether
it writes over its operand and, for a tiled layer, its rows per strip. report.html draws it
(compiler/report_html.py).
"""
from __future__ import annotations


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
