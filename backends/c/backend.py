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

from edgecc.compiler.energy import energy_section
from edgecc.compiler.memory.report import memory_section
from edgecc.compiler.passes.memory_plan import is_view
from edgecc.ir.analysis import macs, weight_bytes
from edgecc.ir.types import dtype_name, pack_int4

from ..base import Backend
from .kernels import CTYPES, Unsupported, c_float, c_int, select
from .names import Namer, c_identifier

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "codegen_templates", "c")
VALUES_PER_LINE = 12


HELIUM_PRELUDE = ("q_mve.c.j2",)


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


def _interface_quant(v) -> dict:
    """scale and zero_point (C literals) of a per-tensor quantized model input or output, for the header."""
    q = v.type.quant
    if q is None or q.per_axis:
        return dict(scale=None, zero_point=None)
    return dict(scale=c_float(q.scale[0]), zero_point=c_int(q.zero_point[0], "i32"))


def _constants(graph) -> list:
    """The graph's constants, then those of the bodies of its tiled ops (which their strips read)."""
    inner = [c for op in graph.ops if op.kind == "tiled" for r in op.regions for c in r.constants]
    return list(graph.constants) + [c for c in inner if c not in set(graph.constants)]


def shape_text(v) -> str:
    return "x".join(map(str, v.type.shape)) or "scalar"


class CBackend(Backend):
    name = "c"

    def __init__(self, target, optimize: str = "balanced"):
        super().__init__(target, optimize)
        self._kernels = {}

    def pipeline(self) -> list:
        return list(self.target.passes) or ["fold_constants", "memory_plan"]

    @property
    def helium(self) -> bool:
        """Whether the templates write Helium vectors (layers, and the preludes they share)."""
        return bool(self.target.isa.get("helium"))

    def kernel(self, op):
        k = self._kernels.get(op)
        if k is None:
            k = self._kernels[op] = select(op, self.target, self.optimize)
        return k

    def why_not(self, op):
        try:
            self.kernel(op)
        except Unsupported as e:
            return str(e)
        return None

    def flash_bytes(self, graph) -> dict:
        """The flash the C of `graph` (lowered) will take: {"data", "code", "total"} bytes, the data exact,
        the code estimated from the target file (flash.py)."""
        from .flash import flash_bytes
        return flash_bytes(self, graph)

    def scratch_bytes(self, op) -> int:
        return 0 if is_view(op) else self.kernel(op).scratch

    def inplace_operands(self, op) -> list:
        """(operand index, byte offset of its buffer inside the result's) for each operand the op's kernel
        may overwrite with its result (backends/c/inplace.py); the memory planner picks one that dies here."""
        from .inplace import inplace_operands
        return inplace_operands(op, self.kernel(op))

    # ---- emit ----------------------------------------------------------------------------
    def emit(self, graph, outdir: str, name: str = "model") -> list:

        plan = graph.meta["memory_plan"]
        api = c_identifier(name).lower()
        names = Namer(taken={f"{api}_input", f"{api}_output", f"{api}_invoke", f"{api}_run"})
        env = self.template_env()

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
        for c in _constants(graph):
            if c.type.size == 0 or c not in needed:
                continue
            cname = consts[c] = names(c.name, "w_")
            data, dt = (pack_int4(c.data), "u8") if c.type.dtype == "i4" else (c.data, c.type.dtype)  # two a byte
            const_decls.append(dict(name=cname, ctype=CTYPES[c.type.dtype], size=data.size,
                                    init=c_values(data, dt), comment=shape_text(c) + " " + c.type.dtype))
        layers, report_layers, preludes, tables_seen = [], [], [], {}
        for i, op in enumerate(graph.ops):
            if is_view(op):
                report_layers.append(self._report_row(op, plan, "view"))
                continue
            k = self.kernel(op)
            fn = names(op.name or op.results[0].name, "layer_")
            for suffix, sub, sk in k.subops:  # functions the layer calls come first (kernels/tiled.py)
                layers.append(self._function(env, sub, sk, f"{fn}_{suffix}", consts, tables_seen, preludes, inner=True))
            layer = self._function(env, op, k, fn, consts, tables_seen, preludes, aliased=plan.inplace.get(op))
            args = [pointer(v, True) for v in op.operands] + [pointer(r, False) for r in op.results]
            if k.scratch:
                args.append(f"ARENA({plan.scratch[op][0]})")
            layers.append(dict(layer, args=", ".join(args)))
            report_layers.append(self._report_row(op, plan, fn))
        ins = [dict(ptr=pointer(v, False), bytes=v.type.nbytes, ctype=CTYPES[v.type.dtype], **_interface_quant(v))
               for v in graph.inputs]
        outs = [dict(ptr=pointer(v, True), bytes=v.type.nbytes, ctype=CTYPES[v.type.dtype], **_interface_quant(v))
                for v in graph.outputs]
        ctx = dict(api=api, API=api.upper(), inputs=ins, outputs=outs, consts=const_decls, layers=layers,
                   preludes=[env.get_template(p).render(helium=self.helium) for p in preludes],
                   arena_bytes=max(plan.arena_bytes, 16), target=self.target.name, cflags=" ".join(self.target.cflags),
                   delegate=None, extra_sources=[])
        ctx.update(self.extra_context(graph, api))
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
                      weight_bytes=int(sum(c.type.nbytes for c in _constants(graph))),
                      macs=int(sum(macs(op) for op in graph.ops)), layers=report_layers,
                      memory=memory_section(plan))
        if "quantization" in graph.meta:  # the quantization report (compiler/passes/quantization_report.py)
            report["quantization"] = graph.meta["quantization"]
        report["energy"] = energy_section(graph, self.target, compact=self._compact)  # None: no [energy] table
        if "sparsity" in graph.meta or "zero_channels" in graph.meta:
            report["sparsity"] = sparsity_section(graph, report_layers)
        written += self.extra_files(graph, outdir, api, env, report)
        path = os.path.join(outdir, "report.json")
        with open(path, "w", newline="\n") as f:
            json.dump(report, f, indent=1, sort_keys=True)
            f.write("\n")
        written.append(path)
        return written

    # ---- what a backend built on this one adds (backends/delegate) --------------------------
    def template_env(self) -> Environment:
        return _env()

    def extra_context(self, graph, api: str) -> dict:
        """More variables for the C templates."""
        return {}

    def extra_files(self, graph, outdir: str, api: str, env, report: dict) -> list:
        """Files written beside the C (paths returned); may add sections to `report` (written after)."""
        return []

    def _function(self, env, op, k, fn, consts, tables_seen, preludes, inner=False, aliased=None) -> dict:
        """One layer function: its tables, parameters and body. `aliased`: the operand index the result
        overwrites (in place). `inner`: a function another layer calls, taking only run-time operands,
        results and scratch; its constant operands are local pointers to their arrays."""
        tables = []
        for suffix, arr in k.consts:
            dt = dtype_name(arr.dtype)
            name, ctype, size = f"{fn}_{suffix}", CTYPES[dt], max(arr.size, 1)
            init = c_values(arr if arr.size else np.zeros(1, arr.dtype), dt)
            # a table some layer already has (the strips of a tiled layer share their weights) is that one
            first = tables_seen.setdefault((ctype, size, init), name)
            tables.append(dict(name=name, ctype=ctype, size=size, init=init, alias=first if first != name else None))
        # restrict: the memory plan never overlaps a result with an operand or the scratch, but where the
        # op runs in place (those two lose it); gcc honours restrict only on parameters (it needs it to
        # vectorize read-modify-write loops)
        params, local = [], []  # local: (operand index, declaration) of an inner function's constants
        for j, v in enumerate(op.operands):
            if v is None and inner:
                local.append((j, f"const void *x{j}"))
            elif v is None:
                params.append(f"const void *x{j}")
            elif inner and v.is_const:
                local.append((j, f"const {CTYPES[v.type.dtype]} *restrict x{j}"))
            else:
                params.append(f"const {CTYPES[v.type.dtype]} *{'' if j == aliased else 'restrict '}x{j}")
        params += [f"{CTYPES[r.type.dtype]} *{'' if j == 0 and aliased is not None else 'restrict '}y{j}"
                   for j, r in enumerate(op.results)]
        if k.scratch:
            params.append("uint8_t *restrict scratch")
        # a Helium core: the float register tiles are written with its vectors (ops/register_tile.c.j2), whose
        # helpers are in the prelude the integer kernels share (q_mve.c.j2)
        body = env.get_template("ops/" + k.template).render(**dict(k.vars, fn=fn, helium=self.helium))
        for p in k.prelude + (HELIUM_PRELUDE if self.helium and "mve_" in body else ()):
            if p not in preludes:
                preludes.append(p)
        used = set(re.findall(r"\b[xy]\d+\b", body))
        decls = [f"  {d} = {consts.get(op.operands[j], 'NULL')};" + ("" if f"x{j}" in used else f" (void)x{j};")
                 for j, d in local]
        unused = [p for p in [f"x{j}" for j in range(len(op.operands)) if j not in dict(local)]
                  + [f"y{j}" for j in range(len(op.results))] if p not in used]
        return dict(fn=fn, params=", ".join(params) or "void", body="\n".join(decls + [body.rstrip()]),
                    tables=tables, unused=unused, invoked=not inner,
                    comment=f"{op.kind} {' '.join(shape_text(v) for v in op.inputs())} -> "
                            f"{' '.join(shape_text(r) for r in op.results)}, {macs(op):,} MACs")

    def _compact(self, op) -> bool:
        """Whether the layer runs the shared compact kernel (kernels/compact.py), for the energy estimate."""
        return not is_view(op) and op.kind != "partition" and self.kernel(op).template.startswith("q_compact")

    def _needed_constants(self, graph) -> set:
        """Constants some reader takes from the C file: a kernel that carries an operand's data itself
        (Kernel.replaced, e.g. reordered weights) does not need the original array."""
        needed = {v for v in graph.outputs if v.is_const}
        for op in graph.ops:
            readers = [(op, ())]
            if not is_view(op):
                k = self.kernel(op)
                readers = [(op, k.replaced)] + [(sub, sk.replaced) for _, sub, sk in k.subops]
            for reader, replaced in readers:
                needed.update(v for j, v in enumerate(reader.operands)
                              if v is not None and v.is_const and j not in replaced)
        return needed

    @staticmethod
    def _report_row(op, plan, fn):
        """One layer of report.json (see sparsity_section for its "sparsity")."""
        r = op.results[0]
        return dict(name=op.name, function=fn, op=op.kind,
                    inputs=[list(v.type.shape) for v in op.inputs()],
                    outputs=[list(v.type.shape) for v in op.results], dtype=r.type.dtype,
                    macs=macs(op), weight_bytes=weight_bytes(op),
                    arena_offset=plan.offsets.get(r, -1), bytes=r.type.nbytes,
                    scratch=list(plan.scratch.get(op, (0, 0))))


def sparsity_section(graph, report_layers) -> dict:
    """report.json "sparsity", and each analysed layer's "sparsity": its weights' density and pattern
    (compiler/passes/sparsity.py), the kernel that computes it and the MACs the build skips (the channels
    remove_zero_channels took out, counted at the layer that produced them). Every kernel is dense:
    the remaining zeros are multiplied."""
    analysed = graph.meta.get("sparsity", {})
    zero = graph.meta.get("zero_channels", {})
    removed = zero.get("removed", {})
    for row in report_layers:
        entry = analysed.get(row["name"])
        if entry is not None:
            row["sparsity"] = dict(entry, kernel="dense", macs_skipped=removed.get(row["name"], {}).get("macs", 0))
    return dict(macs_skipped=int(sum(r["macs"] for r in removed.values())), channels_removed=removed,
                constant_layers=zero.get("constant_layers", []), zero_channels_kept=zero.get("kept", {}))
