"""The structure of an ONNX graph, checked before anything walks it: every value produced exactly
once (by a node, a graph input or an initializer), every node input and graph output produced,
no cycle, at least one node and one output, and not more nodes than the limit.

Nodes out of topological order are accepted (ONNX asks for the order, onnxruntime does not need
it); shapes.py sorts them.
"""
from __future__ import annotations

import onnx

from .limits import Limits
from .names import node_label, refuse

GRAPH_INPUT, INITIALIZER = "the graph input", "an initializer"


def check_graph(graph: onnx.GraphProto, file: str, limits: Limits) -> None:
    """Refuse a graph whose structure is broken."""
    if not graph.output:
        raise refuse("the graph has no outputs: it computes nothing", file)
    if not graph.node:
        raise refuse("the graph has no nodes: it computes nothing", file)
    if len(graph.node) > limits.max_nodes:
        raise refuse(f"the graph has {len(graph.node):,} nodes, over the limit of {limits.max_nodes:,} "
                     f"(--max-nodes)", file)
    producer = producers(graph, file)
    for node in graph.node:
        for name in node.input:
            if name and name not in producer:
                raise refuse(f"input '{name}' is produced by no node, graph input or initializer", file, node)
    for vi in graph.output:
        if vi.name not in producer:
            raise refuse(f"graph output '{vi.name}' is produced by no node, graph input or initializer", file)
    check_acyclic(graph, producer, file)


def producers(graph: onnx.GraphProto, file: str) -> dict:
    """What produces each value: GRAPH_INPUT, INITIALIZER, or the index of a node; a value produced
    twice is refused (an initializer may share a graph input's name: it is the input's default)."""
    producer: dict = {}
    for vi in graph.input:
        if not vi.name:
            raise refuse("a graph input has no name", file)
        if vi.name in producer:
            raise refuse(f"graph input '{vi.name}' is listed twice", file)
        producer[vi.name] = GRAPH_INPUT
    for name in [t.name for t in graph.initializer] + [t.values.name for t in graph.sparse_initializer]:
        if not name:
            raise refuse("an initializer has no name", file)
        if producer.get(name) == INITIALIZER:
            raise refuse(f"initializer '{name}' is listed twice", file)
        producer[name] = INITIALIZER
    for i, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue
            if name in producer:
                other = producer[name]
                by = other if isinstance(other, str) else f"node '{node_label(graph.node[other])}'"
                raise refuse(f"result '{name}' is also produced by {by}: a value must be produced once", file, node)
            producer[name] = i
    return producer


def check_acyclic(graph: onnx.GraphProto, producer: dict, file: str) -> None:
    """Refuse a cycle, naming the nodes on it (Kahn's algorithm: the nodes it cannot order wait on one)."""
    nodes = list(graph.node)
    readers = [[] for _ in nodes]
    waiting = [0] * len(nodes)
    for i, node in enumerate(nodes):
        for j in {producer[name] for name in node.input if name and isinstance(producer[name], int)}:
            readers[j].append(i)
            waiting[i] += 1
    ready = [i for i, w in enumerate(waiting) if w == 0]
    while ready:
        for j in readers[ready.pop()]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    stuck = {i for i, w in enumerate(waiting) if w}
    if stuck:
        cycle = find_cycle(nodes, producer, stuck)
        path = " -> ".join(f"'{node_label(nodes[i])}'" for i in cycle[:6]) + (" -> ..." if len(cycle) > 6 else "")
        raise refuse(f"the graph has a cycle: {path} -> '{node_label(nodes[cycle[0]])}'", file, nodes[cycle[0]])


def find_cycle(nodes: list, producer: dict, stuck: set) -> list:
    """Node indices around one cycle among the `stuck` nodes (each waits for another stuck node)."""
    def waits_for(i):
        return next(producer[n] for n in nodes[i].input if n and isinstance(producer[n], int) and producer[n] in stuck)
    seen, i = {}, min(stuck)
    while i not in seen:
        seen[i] = len(seen)
        i = waits_for(i)
    path = [i]
    j = waits_for(i)
    while j != i:
        path.append(j)
        j = waits_for(j)
    return path[::-1]
