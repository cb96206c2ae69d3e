"""partition: the layers an accelerator runs become `partition` ops; the rest stay for the CPU.

Rewrites each chosen region, a run of consecutive layers the accelerator accepts (the target file's
capability table, compiler/capabilities.py), into one `partition` op whose body (regions[0]) holds
those layers and their constants; the op's operands are the tensors the region reads from outside,
its results the ones read after it. Every layer left on the CPU gets its reason in
graph.meta["partition"]["reasons"].

Modes (option "partition"):
  * "cost" (the default): the layers are ordered so that accelerator layers run together (among the
    layers ready to run, one on the device of the previous layer comes first), which makes the runs
    as long as the graph allows; each run becomes a partition when the cost model says the round
    trip pays: invocation overhead + MACs at the accelerator's rate + the bytes crossing the
    boundary at its transfer rate, against the MACs (or, without MACs, the result bytes) at the CPU's
    rate. A run of reshapes alone never pays; a convolution nearly always does.
  * "single-cut": the Edge TPU compiler's rule, the baseline: the layers before the first one the
    accelerator rejects, in the graph's order, are one partition; that layer and everything after
    it run on the CPU. The float interface's quantize of a graph input is not a cut (the Edge TPU
    compiler is handed the int8 model behind it), so a QDQ model is cut where its layers are.
  * "none": everything on the CPU (the reasons still say what the accelerator would have taken).

A target may bound the tensors one partition reads and writes (`max_boundary_tensors`: the Ethos-U
driver has 8 base addresses, 3 taken by the weights and scratch): a run that would cross it is cut
into consecutive pieces that keep within it, each then judged by the mode's rule; a layer that alone
crosses it stays on the CPU with that reason.

Why a pass and not the backend: which layers cross to the accelerator changes what the memory
planner sees (a partition is one step with its boundary tensors live across it), so it happens
before memory planning, as data in the IR.
"""
from __future__ import annotations

from edgecc.compiler.capabilities import read_capabilities
from edgecc.compiler.memory import is_view
from edgecc.ir.analysis import macs
from edgecc.ir.errors import EdgeccError
from edgecc.ir.graph import Graph, Op, Value

from . import register

MODES = ("cost", "single-cut", "none")


def layer_name(op) -> str:
    return op.name or op.results[0].name


def schedule_by_device(ops, on_accel) -> list:
    """A topological order of `ops` that keeps each device's layers together: among the ready
    layers, the first (in the given order) on the previous layer's device, else the first ready."""
    produced_by = {r: op for op in ops for r in op.results}
    waiting = {op: {produced_by[v] for v in op.inputs() if v in produced_by} for op in ops}
    order, done, device = [], set(), None
    pending = list(ops)
    while pending:
        ready = [op for op in pending if waiting[op] <= done]
        pick = next((op for op in ready if on_accel(op) == device), ready[0])
        device = on_accel(pick)
        order.append(pick)
        done.add(pick)
        pending.remove(pick)
    return order


def runs(order, on_accel) -> list:
    """The maximal runs of consecutive accelerator layers in `order`, as lists of ops."""
    found, current = [], []
    for op in order:
        if on_accel(op):
            current.append(op)
        elif current:
            found, current = found + [current], []
    return found + [current] if current else found


def boundary(region, graph) -> tuple[list, list]:
    """(the run-time tensors the region reads from outside, the tensors it makes that are read after it)."""
    inside = {r for op in region for r in op.results}
    members = set(region)
    reads = []
    for op in region:
        reads += [v for v in op.inputs() if not v.is_const and v not in inside and v not in reads]
    used_outside = {v for op in graph.ops if op not in members for v in op.inputs()} | set(graph.outputs)
    writes = [r for op in region for r in op.results if r in used_outside]
    return reads, writes


def split_by_boundary(region, graph, limit: int) -> tuple[list, list]:
    """(pieces of `region`, in order, each with at most `limit` boundary tensors; the layers that alone
    have more)."""
    pieces, alone, current = [], [], []
    for op in region:
        if sum(map(len, boundary(current + [op], graph))) <= limit:
            current.append(op)
            continue
        if current:
            pieces.append(current)
        current = [op] if sum(map(len, boundary([op], graph))) <= limit else []
        if not current:
            alone.append(op)
    return pieces + ([current] if current else []), alone


def estimate(region, graph, costs) -> tuple[float, float]:
    """(seconds on the accelerator including the round trip, seconds on the CPU) for a region."""
    reads, writes = boundary(region, graph)
    moved = sum(v.type.nbytes for v in reads + writes)
    work = sum(macs(op) for op in region)
    accel = (costs["invoke_overhead_cycles"] + work / costs["macs_per_cycle"]
             + moved / costs["transfer_bytes_per_cycle"]) / costs["clock_hz"]
    cpu_cycles = sum(macs(op) * costs["cpu_cycles_per_mac"] if macs(op)
                     else (0 if is_view(op) else op.results[0].type.nbytes * costs["cpu_cycles_per_byte"])
                     for op in region)
    return accel, cpu_cycles / costs["cpu_clock_hz"]


def carve(graph, region, index: int, target: str) -> Op:
    """Replace the ops of `region` in `graph` with one partition op holding them; return it."""
    reads, writes = boundary(region, graph)
    inner = {v: Value(v.name, v.type) for v in reads}
    consts = []
    for op in region:
        consts += [v for v in op.inputs() if v.is_const and v not in consts]
        op.operands = [inner.get(v, v) if v is not None else None for v in op.operands]
    body = Graph(f"p{index}", [inner[v] for v in reads], list(writes), ops=list(region), constants=consts)
    outer = [Value(v.name, v.type) for v in writes]
    part = Op("partition", list(reads), outer, {"target": target}, f"p{index}", regions=[body])
    at = graph.ops.index(region[0])
    graph.ops = [op for op in graph.ops if op not in set(region)]
    graph.ops.insert(at, part)
    for old, new in zip(writes, outer):
        graph.replace_uses(old, new)
    # the body's ops still produce the old values: its outputs are those, the outer graph reads the new
    body.outputs = list(writes)
    return part


def _bounded(region, graph, limit, cpu_reasons) -> list:
    pieces, alone = split_by_boundary(region, graph, limit)
    cpu_reasons.update({op: f"more than {limit} tensors cross its boundary, the most one partition may have"
                        for op in alone})
    return pieces


@register("partition")
def run(graph, ctx):
    target = ctx.target
    caps = read_capabilities(target.accelerator, target.path)
    mode = ctx.options.get("partition") or "cost"
    if mode not in MODES:
        raise EdgeccError(f"unknown partition mode '{mode}' (known: {', '.join(MODES)})")
    # a backend may have limits of its own beyond the accelerator's (what it can write for it)
    extra = getattr(ctx.backend, "partition_why_not", None) or (lambda op: None)
    reasons = {op: caps.why_not(op) or extra(op) for op in graph.ops}
    on_accel = lambda op: reasons[op] is None  # noqa: E731
    if mode == "cost":
        graph.ops = schedule_by_device(graph.ops, on_accel)
    candidates = runs(graph.ops, on_accel)
    chosen, cpu_reasons = [], {}
    limit = caps.limits.get("max_boundary_tensors")
    if mode == "single-cut":
        inputs = set(graph.inputs)
        interface = [op for op in graph.ops if op.kind == "quantize" and op.operands[0] in inputs]
        body = [op for op in graph.ops if op not in interface]
        graph.ops = interface + body
        first_bad = next((i for i, op in enumerate(graph.ops) if not on_accel(op) and op not in interface),
                         len(graph.ops))
        prefix = [op for op in graph.ops[:first_bad] if op not in interface]
        chosen = [prefix] if prefix else []
        if limit is not None:
            chosen = [p for r in chosen for p in _bounded(r, graph, limit, cpu_reasons)]
        for op in graph.ops[first_bad + 1:]:
            if on_accel(op):
                cpu_reasons[op] = "after the first layer the accelerator rejects (single-cut)"
    elif mode == "cost":
        if limit is not None:
            candidates = [p for r in candidates for p in _bounded(r, graph, limit, cpu_reasons)]
        for region in candidates:
            accel, cpu = estimate(region, graph, caps.costs)
            if accel < cpu:
                chosen.append(region)
            else:
                why = (f"supported, but the round trip costs more than it saves "
                       f"({accel * 1e6:.1f} us on the {caps.name} against {cpu * 1e6:.1f} us here)")
                cpu_reasons.update({op: why for op in region})
    else:
        cpu_reasons.update({op: "partitioning is off (--partition none)" for op in graph.ops if on_accel(op)})
    for op in graph.ops:
        if reasons[op] is not None:
            cpu_reasons[op] = reasons[op]
    names = {op: layer_name(op) for op in graph.ops}
    estimates = [estimate(region, graph, caps.costs) for region in chosen]
    parts = [carve(graph, region, k, target.name) for k, region in enumerate(chosen)]
    graph.remove_dead()  # the constants that moved into a body
    graph.meta["partition"] = dict(
        mode=mode, accelerator=caps.name,
        reasons={names[op]: why for op, why in cpu_reasons.items()},
        partitions=[dict(name=p.name, ops=[names[op] for op in p.regions[0].ops],
                         macs=int(sum(macs(op) for op in p.regions[0].ops)),
                         accel_seconds=a, cpu_seconds=c) for p, (a, c) in zip(parts, estimates)])
    return graph
