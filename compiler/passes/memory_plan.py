"""memory_plan: an execution order and an offset in one static arena for every activation.

Reorders the ops when another topological order lowers the arena (graphs that branch, see
compiler/memory/schedule.py), then records graph.meta["memory_plan"], a MemoryPlan: the offset of
every value, each op's scratch, which ops write their result over an operand, the bytes live at
every step and the lower bound (their maximum) next to the arena achieved. The generated code
allocates nothing at run time.

A plan that does not fit the SRAM budget (compiler/memory/budget.py) is refused with the bytes it
needs and the layer at its peak; the fit_memory pass, run before this one, tiles what it can first.
"""
from __future__ import annotations

from edgecc.compiler.memory import is_view, plan_ops, schedule  # noqa: F401  (is_view: the backend's)
from edgecc.compiler.memory.plan import without_needless_sharing
from edgecc.compiler.memory.budget import check_flash, refuse, sram_budget, stack_bytes

from . import register


def best_plan(graph, backend):
    """The plan of the better of the graph's order and the scheduled one (the graph's on a tie)."""
    scratch_of = (lambda op: 0 if is_view(op) else backend.scratch_bytes(op)) if backend else (lambda op: 0)
    plan = plan_ops(graph.ops, graph.inputs, graph.outputs, backend)
    order = schedule(graph.ops, graph.inputs, graph.outputs, scratch_of)
    if order != graph.ops:
        other = plan_ops(order, graph.inputs, graph.outputs, backend)
        if other.arena_bytes < plan.arena_bytes:
            plan = other
    return plan


@register("memory_plan")
def run(graph, ctx):
    backend = ctx.backend if ctx else None
    plan = without_needless_sharing(best_plan(graph, backend), graph.inputs, graph.outputs, backend)
    graph.ops = list(plan.order)
    budget, given = sram_budget(ctx)
    plan.budget, plan.stack = budget, stack_bytes(ctx.target if ctx else None)
    if budget and plan.arena_bytes + plan.stack > budget:
        raise refuse(plan.arena_bytes + plan.stack, plan.peak_op, given, ctx.options.get("file", ""))
    check_flash(graph, ctx)
    graph.meta["memory_plan"] = plan
    return graph
