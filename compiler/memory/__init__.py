"""Memory planning shared by the passes: where every activation lives in the one static arena.

  placement.py  rigid groups of buffers given offsets, greedily, several orders tried
  plan.py       lifetimes, in-place sharing, the timeline and its lower bound (MemoryPlan)
  schedule.py   an execution order with a low peak, for graphs that branch
  budget.py     SRAM budgets, sizes as users write them, the refusal with a number

The passes compiler/passes/memory_plan.py (plan, order, check the budget) and fit_memory.py (tile
until the plan fits) are the users.
"""
from .plan import MemoryPlan, is_view, plan_ops, view_roots  # noqa: F401
from .schedule import schedule  # noqa: F401
