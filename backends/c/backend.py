"""The C backend: portable C99 (host) and Cortex-M targets, rendered from Jinja templates.

It reads the lowered graph and its memory plan and writes NAME.h (the public API), NAME.c (one
static function per layer, weights as const arrays, the static arena), a Makefile, a
CMakeLists.txt and report.json. It never changes the graph.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from edgecc.ir.analysis import macs, weight_bytes

from ..base import Backend
from .kernels import CTYPES, Unsupported, c_float, c_int, select
from .names import Namer, c_identifier

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "codegen_templates", "c")
VALUES_PER_LINE = 12


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(os.path.normpath(TEMPLATES)), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["cfloat"] = c_float
    return env


def c_values(data: np.ndarray, dtype: str) -> str:
    """The body of a C array initializer, VALUES_PER_LINE values a line."""
    flat = data.reshape(-1)
    if dtype == "f32":
        items = [c_float(x) for x in flat]
    else:
        items = [c_int(x, dtype) for x in flat.astype(np.int64)]
    lines = [", ".join(items[i:i + VALUES_PER_LINE]) for i in range(0, len(items), VALUES_PER_LINE)]
    return ",\n  ".join(lines)


def shape_text(v) -> str:
    return "x".join(map(str, v.type.shape)) or "scalar"


class CBackend(Backend):
    name = "c"

    def __init__(self, target):
        super().__init__(target)
        self._kernels = {}

    def pipeline(self) -> list:
        return list(self.target.passes) or ["fold_constants", "memory_plan"]

    def kernel(self, op):
        k = self._kernels.get(op)
        if k is None:
            k = self._kernels[op] = select(op, self.target)
        return k

    def why_not(self, op):
        try:
            self.kernel(op)
        except Unsupported as e:
            return str(e)
        return None

    def scratch_bytes(self, op) -> int:
        from edgecc.compiler.passes.memory_plan import is_view
        return 0 if is_view(op) else self.kernel(op).scratch

    # ---- emit ----------------------------------------------------------------------------
    def emit(self, graph, outdir: str, name: str = "model") -> list:
        from edgecc.compiler.passes.memory_plan import is_view

        plan = graph.meta["memory_plan"]
        api = c_identifier(name).lower()
        names = Namer(taken={f"{api}_input", f"{api}_output", f"{api}_invoke", f"{api}_run"})
        env = _env()

        def pointer(v, const):
            if v is None:
                return "NULL"
            if v.is_const:
                return consts.get(v, "NULL")
            qual = "const " if const else ""
            return f"({qual}{CTYPES[v.type.dtype]} *)ARENA({plan.offsets[v]})"

        consts = {}
        const_decls = []
        needed = self._needed_constants(graph)
        for c in graph.constants:
            if c.type.size == 0 or c not in needed:
                continue
            cname = consts[c] = names(c.name, "w_")
            const_decls.append(dict(name=cname, ctype=CTYPES[c.type.dtype], size=c.type.size,
                                    init=c_values(c.data, c.type.dtype), comment=shape_text(c) + " " + c.type.dtype))
        layers, report_layers = [], []
        for i, op in enumerate(graph.ops):
            if is_view(op):
                report_layers.append(self._report_row(op, plan, "view"))
                continue
            k = self.kernel(op)
            fn = names(op.name or op.results[0].name, "layer_")
            tables = []
            for suffix, arr in k.consts:
                dt = {np.dtype("float32"): "f32", np.dtype("int32"): "i32", np.dtype("int8"): "i8",
                      np.dtype("int16"): "i16", np.dtype("uint8"): "u8", np.dtype("int64"): "i64"}[arr.dtype]
                tables.append(dict(name=f"{fn}_{suffix}", ctype=CTYPES[dt], size=max(arr.size, 1),
                                   init=c_values(arr if arr.size else np.zeros(1, arr.dtype), dt)))
            # restrict: the memory plan never overlaps a result with an operand or the scratch, and
            # gcc honours restrict only on parameters (it needs it to vectorize read-modify-write loops)
            params = [f"const {CTYPES[v.type.dtype]} *restrict x{j}" if v is not None else f"const void *x{j}"
                      for j, v in enumerate(op.operands)]
            params += [f"{CTYPES[r.type.dtype]} *restrict y{j}" for j, r in enumerate(op.results)]
            args = [pointer(v, True) for v in op.operands] + [pointer(r, False) for r in op.results]
            if k.scratch:
                params.append("uint8_t *restrict scratch")
                args.append(f"ARENA({plan.scratch[op][0]})")
            tvars = dict(k.vars, fn=fn)
            body = env.get_template("ops/" + k.template).render(**tvars)
            used = set(re.findall(r"\b[xy]\d+\b", body))
            unused = [p for p in [f"x{j}" for j in range(len(op.operands))] + [f"y{j}" for j in range(len(op.results))]
                      if p not in used]
            layers.append(dict(fn=fn, params=", ".join(params) or "void", args=", ".join(args), body=body.rstrip(),
                               tables=tables, unused=unused,
                               comment=f"{op.kind} {' '.join(shape_text(v) for v in op.inputs())} -> "
                                       f"{' '.join(shape_text(r) for r in op.results)}, {macs(op):,} MACs"))
            report_layers.append(self._report_row(op, plan, fn))
        ins = [dict(ptr=pointer(v, False), bytes=v.type.nbytes, ctype=CTYPES[v.type.dtype]) for v in graph.inputs]
        outs = [dict(ptr=pointer(v, True), bytes=v.type.nbytes, ctype=CTYPES[v.type.dtype]) for v in graph.outputs]
        ctx = dict(api=api, API=api.upper(), inputs=ins, outputs=outs, consts=const_decls, layers=layers,
                   arena_bytes=max(plan.arena_bytes, 16), target=self.target.name, cflags=" ".join(self.target.cflags))
        files = {f"{api}.h": "model.h.j2", f"{api}.c": "model.c.j2", "Makefile": "Makefile.j2",
                 "CMakeLists.txt": "CMakeLists.txt.j2"}
        written = []
        os.makedirs(outdir, exist_ok=True)
        for fname, tmpl in files.items():
            path = os.path.join(outdir, fname)
            with open(path, "w", newline="\n") as f:
                f.write(env.get_template(tmpl).render(**ctx))
            written.append(path)
        report = dict(model=api, target=self.target.name, arena_bytes=plan.arena_bytes,
                      arena_lower_bound=plan.lower_bound, timeline=plan.timeline,
                      weight_bytes=int(sum(c.type.nbytes for c in graph.constants)),
                      macs=int(sum(macs(op) for op in graph.ops)), layers=report_layers)
        path = os.path.join(outdir, "report.json")
        with open(path, "w", newline="\n") as f:
            json.dump(report, f, indent=1, sort_keys=True)
            f.write("\n")
        written.append(path)
        return written

    def _needed_constants(self, graph) -> set:
        """Constants some reader takes from the C file: a kernel that carries an operand's data itself
        (Kernel.replaced, e.g. reordered weights) does not need the original array."""
        from edgecc.compiler.passes.memory_plan import is_view
        needed = {v for v in graph.outputs if v.is_const}
        for op in graph.ops:
            replaced = () if is_view(op) else self.kernel(op).replaced
            needed.update(v for j, v in enumerate(op.operands) if v is not None and v.is_const and j not in replaced)
        return needed

    @staticmethod
    def _report_row(op, plan, fn):
        r = op.results[0]
        return dict(name=op.name, function=fn, op=op.kind,
                    inputs=[list(v.type.shape) for v in op.inputs()],
                    outputs=[list(v.type.shape) for v in op.results], dtype=r.type.dtype,
                    macs=macs(op), weight_bytes=weight_bytes(op),
                    arena_offset=plan.offsets.get(r, -1), bytes=r.type.nbytes,
                    scratch=list(plan.scratch.get(op, (0, 0))))
