"""The delegate backend: accelerator partitions called through a C interface, CPU islands in our C.

Built on the C backend: the lowered graph (after the partition pass) is emitted by CBackend as
NAME.h / NAME.c, where each `partition` op is one layer calling NAME_delegate_invoke. Beside it:
  * NAME_delegate.h: the interface an accelerator vendor implements (prepare a partition from its
    blob, invoke it on arena pointers), each boundary tensor's shape, dtype, scale and zero point;
  * partitions/NAME_pK.tflite: each partition as a standalone int8 TFLite model (tflite_writer.py),
    the input of the Edge TPU compiler and of Vela; partitions/NAME_blobs.c: the blobs prepare takes;
  * reference/NAME_delegate_ref.c (+ reference/NAME_pK.[ch]): the interface on edgecc's own kernels,
    each partition compiled by the C backend as a small model of its own;
  * mapping.txt: operator, count, status (mapped, or the reason it is not), as the Edge TPU
    compiler's log lays it out; report.json "partitions": the execution order, device by device.
It never changes the graph: the reference models are compiled from copies of the partition bodies.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections import Counter

import numpy as np
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from edgecc.backends.c.backend import CBackend, c_values, shape_text
from edgecc.backends.c.kernels import Kernel, c_float
from edgecc.backends.c.names import c_identifier
from edgecc.compiler.capabilities import read_capabilities
from edgecc.ir.analysis import macs

TEMPLATES = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "codegen_templates"))


def _tensor(v) -> dict:
    q = v.type.quant
    per_tensor = q is not None and not q.per_axis
    return dict(dtype=v.type.np_dtype.name, shape=list(v.type.shape) or [1], shape_text=shape_text(v),
                bytes=v.type.nbytes, name_comment=v.name.replace("*/", "* /")[:80],
                scale=c_float(q.scale[0]) if per_tensor else None,
                zero_point=int(q.zero_point[0]) if per_tensor else None)


class DelegateBackend(CBackend):
    name = "delegate"

    def __init__(self, target, optimize: str = "balanced"):
        super().__init__(target, optimize)
        self.capabilities = read_capabilities(target.accelerator, target.path)
        self.api = "model"
        self._order = {}

    def pipeline(self) -> list:
        return list(self.target.passes)

    def partition_why_not(self, op):
        """What keeps a layer the accelerator accepts out of a partition: the TFLite writer's limits."""
        from .tflite_writer import why_not_tflite
        return why_not_tflite(op)

    def kernel(self, op):
        if op.kind != "partition":
            return super().kernel(op)
        k = self._kernels.get(op)
        if k is None:
            n_in, n_out = len(op.operands), len(op.results)
            k = self._kernels[op] = Kernel("delegate_call.c.j2", vars=dict(
                api=self.api, index=self._order.get(op, 0), n_inputs=n_in, n_outputs=n_out,
                inputs=", ".join(f"x{j}" for j in range(n_in)) or "NULL",
                outputs=", ".join(f"y{j}" for j in range(n_out)), scratch="NULL"))
        return k

    def why_not(self, op):
        return None if op.kind == "partition" else super().why_not(op)

    def emit(self, graph, outdir: str, name: str = "model") -> list:
        self.api = c_identifier(name).lower()
        self._order = {op: k for k, op in enumerate(p for p in graph.ops if p.kind == "partition")}
        self._kernels = {}
        self._blobs = {op: self._blob(op) for op in self._order}
        return super().emit(graph, outdir, name)

    # ---- the C backend's hooks -----------------------------------------------------------
    def template_env(self) -> Environment:
        env = Environment(loader=ChoiceLoader([FileSystemLoader(os.path.join(TEMPLATES, "delegate")),
                                               FileSystemLoader(os.path.join(TEMPLATES, "c"))]),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        env.filters["cfloat"] = c_float
        return env

    def extra_context(self, graph, api: str) -> dict:
        parts = [self._partition_vars(op) for op in self._order]
        sources = [f"partitions/{api}_blobs.c", f"reference/{api}_delegate_ref.c"] + [f"reference/{p['api']}.c" for p in parts]
        return dict(delegate=dict(partitions=parts), extra_sources=sources)

    def extra_files(self, graph, outdir: str, api: str, env, report: dict) -> list:
        parts = [self._partition_vars(op) for op in self._order]
        ctx = dict(api=api, API=api.upper(), target=self.target.name, accelerator=self.capabilities.name,
                   partitions=parts)
        written = []

        def write(rel, text, mode="w"):
            path = os.path.join(outdir, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, mode, **({} if "b" in mode else {"newline": "\n"})) as f:
                f.write(text)
            written.append(path)

        write(f"{api}_delegate.h", env.get_template("delegate.h.j2").render(**ctx))
        for op, p in zip(self._order, parts):
            write(os.path.join("partitions", f"{p['api']}.tflite"), self._blobs[op], "wb")
        write(os.path.join("partitions", f"{api}_blobs.c"), env.get_template("blobs.c.j2").render(**ctx))
        for op, p in zip(self._order, parts):
            for rel, text in self._reference_model(op, p["api"]):
                write(os.path.join("reference", rel), text)
        write(os.path.join("reference", f"{api}_delegate_ref.c"), env.get_template("delegate_ref.c.j2").render(**ctx))
        write("mapping.txt", self._mapping(graph))
        report["partitions"] = self._report_partitions(graph, api)
        return written

    # ---- pieces --------------------------------------------------------------------------
    def _blob(self, op) -> bytes:
        """What prepare is handed for a partition: its TFLite model."""
        from .tflite_writer import tflite_model
        return tflite_model(op.regions[0], description=f"edgecc partition {op.name}")

    def _partition_vars(self, op) -> dict:
        body, blob = op.regions[0], self._blobs[op]
        part_api = f"{self.api}_{c_identifier(op.name).lower()}"
        return dict(name=op.name, api=part_api, NAME=part_api.upper(), n_ops=len(body.ops), macs=macs(op),
                    inputs=[_tensor(v) for v in op.operands], outputs=[_tensor(v) for v in op.results],
                    scratch=self.kernel(op).scratch, blob=f"{part_api}_blob", blob_size=len(blob),
                    blob_what=f"partitions/{part_api}.tflite, the partition's int8 TFLite model",
                    blob_init=c_values(np.frombuffer(blob, np.uint8), "u8"))

    def _reference_model(self, op, part_api: str) -> list:
        """(file name, text) of the partition's body compiled by the C backend as its own model."""
        from edgecc.compiler.pipeline import lower

        body = copy.deepcopy(op.regions[0])
        cpu = CBackend(self.target, self.optimize)
        body = lower(body, self.target, backend=cpu, passes=["memory_plan"])
        work = tempfile.mkdtemp(prefix="edgecc-partition-")
        try:
            CBackend(self.target, self.optimize).emit(body, work, name=part_api)
            return [(f, open(os.path.join(work, f), encoding="utf-8").read()) for f in (f"{part_api}.h", f"{part_api}.c")]
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _op_name(self, op) -> str:
        from .tflite_writer import tflite_op_name
        return tflite_op_name(op) or self.capabilities.op_name(op).upper()

    def _mapping(self, graph) -> str:
        """Operator, count, status: every layer of the model, mapped or with the reason it is not."""
        reasons = graph.meta.get("partition", {}).get("reasons", {})
        rows = Counter()
        for op in graph.ops:
            if op.kind == "partition":
                rows.update((self._op_name(inner), f"Mapped to {self.capabilities.name}") for inner in op.regions[0].ops)
            else:
                rows[(self._op_name(op), reasons.get(op.name or op.results[0].name, "runs on the CPU"))] += 1
        width = max([len(n) for n, _ in rows] + [len("Operator")]) + 2
        lines = [f"{'Operator'.ljust(width)}{'Count'.ljust(11)}Status", ""]
        for (name, status), n in sorted(rows.items(), key=lambda r: (not r[0][1].startswith("Mapped"), r[0])):
            lines.append(f"{name.ljust(width)}{str(n).ljust(11)}{status}")
        return "\n".join(lines) + "\n"

    def _report_partitions(self, graph, api: str) -> list:
        """report.json "partitions": the execution order, one entry per partition and per CPU island."""
        reasons = graph.meta.get("partition", {}).get("reasons", {})
        entries = []
        for op in graph.ops:
            if op.kind == "partition":
                body = op.regions[0]
                moved = sum(v.type.nbytes for v in op.operands) + sum(v.type.nbytes for v in op.results)
                entries.append(dict(name=op.name, device="delegate", ops=[o.name or o.results[0].name for o in body.ops],
                                    macs=int(macs(op)), file=f"partitions/{api}_{c_identifier(op.name).lower()}.tflite",
                                    boundary_bytes=int(moved)))
                continue
            layer = op.name or op.results[0].name
            if not entries or entries[-1]["device"] != "cpu":
                entries.append(dict(name=f"cpu{sum(e['device'] == 'cpu' for e in entries)}", device="cpu",
                                    ops=[], macs=0, reasons={}))
            entries[-1]["ops"].append(layer)
            entries[-1]["macs"] += int(macs(op))
            entries[-1]["reasons"][layer] = reasons.get(layer, "runs on the CPU")
        return entries
