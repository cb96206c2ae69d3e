"""Small channels-last graphs for the memory tests (in place, tiled), and running one with a chosen plan.

`Net` writes a graph op by op (int8 with per-channel weights, or float); `run_planned` plans it (every
in-place sharing the backend allows, or none), emits the C of a target, builds it for the host (the
Cortex-M targets' DSP intrinsics have plain C stand-ins) and runs it.
"""
from __future__ import annotations

import tempfile

import numpy as np

from edgecc.backends.c.runner import STRICT_CFLAGS, build_and_run
from edgecc.backends.registry import backend_for
from edgecc.compiler.memory import plan_ops
from edgecc.ir import Graph, Op, TensorType, Value, verify
from edgecc.ir.ops import fill_defaults, infer_shapes
from edgecc.ir.types import Quant


class Net:
    def __init__(self, name="net", seed=0):
        self.g = Graph(name, [], [])
        self.rng = np.random.default_rng(seed)

    def _act(self, dtype):
        if dtype == "f32":
            return None
        return Quant((float(self.rng.uniform(0.02, 0.08)),), (int(self.rng.integers(-20, 20)),))

    def input(self, name, shape, dtype="i8") -> Value:
        v = Value(name, TensorType(tuple(shape), dtype, self._act(dtype), "nhwc"))
        self.g.inputs.append(v)
        return v

    def const(self, name, data, dtype, quant=None, layout=None) -> Value:
        t = TensorType(tuple(np.shape(data)), dtype, quant, layout)
        v = Value(name, t, np.ascontiguousarray(np.asarray(data).astype(t.np_dtype)))
        self.g.constants.append(v)
        return v

    def op(self, kind, operands, name, **attrs) -> Value:
        attrs = fill_defaults(kind, attrs)
        probe = Op(kind, list(operands), [Value("_", TensorType((), "f32"))], attrs)
        x = operands[0]
        t = TensorType(tuple(infer_shapes(probe)[0]), x.type.dtype, self._act(x.type.dtype), "nhwc")
        y = Value(name, t)
        self.g.ops.append(Op(kind, list(operands), [y], attrs, name))
        return y

    def conv(self, x, name, cout, k=3, stride=1, pads=(1, 1, 1, 1), group=1, act="relu") -> Value:
        cin = x.type.shape[-1]
        wshape = (cout, k, k, cin // group)
        if x.type.dtype == "f32":
            w = self.const(f"{name}_w", self.rng.standard_normal(wshape) * 0.3, "f32", layout="ohwi")
            b = self.const(f"{name}_b", self.rng.standard_normal(cout) * 0.1, "f32")
        else:
            sw = self.rng.uniform(0.002, 0.02, cout)
            w = self.const(f"{name}_w", self.rng.integers(-127, 128, wshape), "i8",
                           Quant(tuple(map(float, sw)), (0,) * cout, 0), "ohwi")
            sb = tuple(float(np.float32(x.type.quant.scale[0]) * np.float32(s)) for s in sw)
            b = self.const(f"{name}_b", self.rng.integers(-3000, 3000, cout), "i32", Quant(sb, (0,) * cout, 0))
        return self.op("conv", [x, w, b], name, strides=[stride, stride], pads=list(pads), dilations=[1, 1],
                       group=group, channels_last=1, activation=act)

    def graph(self, *outputs) -> Graph:
        self.g.outputs = list(outputs)
        verify(self.g)
        return self.g

    def inputs(self, seed=1) -> list:
        rng = np.random.default_rng(seed)
        out = []
        for v in self.g.inputs:
            if v.type.dtype == "f32":
                out.append(rng.standard_normal(v.type.shape).astype(np.float32))
            else:
                out.append(rng.integers(-128, 128, v.type.shape).astype(np.int8))
        return out


def run_planned(graph, target, inputs, share=True, cflags=None, optimize="balanced"):
    """(outputs, plan): the graph's C for `target` (kernels chosen for `optimize`), planned with every
    in-place sharing its kernels allow (share) or none, built for the host and run."""
    backend = backend_for(target, optimize)
    plan = plan_ops(graph.ops, graph.inputs, graph.outputs, backend, shared=set(graph.ops) if share else set())
    graph.meta["memory_plan"] = plan
    with tempfile.TemporaryDirectory(prefix="edgecc-memory-") as d:
        backend.emit(graph, d)
        outs = build_and_run(d, graph, inputs, cflags=cflags or STRICT_CFLAGS)
    return outs, plan, backend
