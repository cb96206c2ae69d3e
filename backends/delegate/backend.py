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
When the target's accelerator compiler is Arm's Vela and Vela is installed (ethos-u55), every partition
is also compiled by Vela (vela.py): the blob prepare is handed becomes Vela's command stream, its
weights a const array beside it, its scratch area a buffer of the model's arena while the partition
runs, and ethosu/NAME_delegate_ethosu.c implements the interface on the Ethos-U core driver (built
with NAME_DELEGATE_ETHOSU); Vela's estimates go in report.json, its optimised TFLite in partitions/.
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
from edgecc.compiler.memory.placement import align
from edgecc.ir.analysis import macs
from edgecc.ir.errors import EdgeccError

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
        self._tflite = {}  # partition op -> its TFLite model (bytes)
        self._npus = {}    # partition op -> Vela's compilation of it (emit)
        self._parts = []   # each partition's template variables, in order (emit)

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
            npu = self._npu(op)
            # the NPU's scratch area (Vela's arena, where it also reads the inputs and writes the outputs)
            # is arena bytes live only while the partition runs
            scratch = align(npu.scratch_bytes) if npu else 0
            k = self._kernels[op] = Kernel("delegate_call.c.j2", scratch=scratch, vars=dict(
                api=self.api, index=self._order.get(op, 0), n_inputs=n_in, n_outputs=n_out,
                inputs=", ".join(f"x{j}" for j in range(n_in)) or "NULL",
                outputs=", ".join(f"y{j}" for j in range(n_out)), scratch="scratch" if scratch else "NULL"))
        return k

    def _npu(self, op):
        """Vela's compilation of partition `op` (vela.VelaPartition); None when the accelerator's compiler
        is not Vela or Vela is not installed."""
        from .vela import compile_partition_cached, vela_version

        if self.capabilities.compiler != "vela" or vela_version() is None:
            return None
        options = self.capabilities.compiler_options
        try:
            return compile_partition_cached(self._blob(op), options.get("accelerator_config", "ethos-u55-128"),
                                            options.get("system_config"), options.get("memory_mode"))
        except EdgeccError as e:
            raise EdgeccError(f"partition {op.name} ({len(op.regions[0].ops)} layers): {e}") from None

    def why_not(self, op):
        return None if op.kind == "partition" else super().why_not(op)

    def emit(self, graph, outdir: str, name: str = "model") -> list:
        self.api = c_identifier(name).lower()
        self._order = {op: k for k, op in enumerate(p for p in graph.ops if p.kind == "partition")}
        self._kernels = {}
        self._blobs = {op: self._blob(op) for op in self._order}
        self._npus = {op: self._npu(op) for op in self._order}
        # rendered once: both the C file's context and the delegate's files read them (blobs as C text)
        self._parts = [self._partition_vars(op) for op in self._order]
        return super().emit(graph, outdir, name)

    # ---- the C backend's hooks -----------------------------------------------------------
    def template_env(self) -> Environment:
        env = Environment(loader=ChoiceLoader([FileSystemLoader(os.path.join(TEMPLATES, "delegate")),
                                               FileSystemLoader(os.path.join(TEMPLATES, "c"))]),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        env.filters["cfloat"] = c_float
        return env

    def extra_context(self, graph, api: str) -> dict:
        parts = self._parts
        sources = [f"partitions/{api}_blobs.c", f"reference/{api}_delegate_ref.c"] + [f"reference/{p['api']}.c" for p in parts]
        if self._vela_used():
            sources.append(f"ethosu/{api}_delegate_ethosu.c")
        return dict(delegate=dict(partitions=parts), extra_sources=sources)

    def _vela_used(self) -> bool:
        return bool(self._order) and all(self._npus.get(op) for op in self._order)

    def extra_files(self, graph, outdir: str, api: str, env, report: dict) -> list:
        parts = self._parts
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
            if p["npu"]:
                write(os.path.join("partitions", f"{p['api']}_vela.tflite"), self._npus[op].optimised, "wb")
        write(os.path.join("partitions", f"{api}_blobs.c"), env.get_template("blobs.c.j2").render(**ctx))
        if self._vela_used():
            write(os.path.join("ethosu", f"{api}_delegate_ethosu.c"), env.get_template("ethosu.c.j2").render(**ctx))
        for op, p in zip(self._order, parts):
            for rel, text in self._reference_model(op, p["api"]):
                write(os.path.join("reference", rel), text)
        write(os.path.join("reference", f"{api}_delegate_ref.c"), env.get_template("delegate_ref.c.j2").render(**ctx))
        write("mapping.txt", self._mapping(graph))
        report["partitions"] = self._report_partitions(graph, api)
        return written

    # ---- pieces --------------------------------------------------------------------------
    def _blob(self, op) -> bytes:
        """The partition's int8 TFLite model (what prepare is handed, unless Vela compiled it)."""
        from .tflite_writer import tflite_model

        if op not in self._tflite:
            self._tflite[op] = tflite_model(op.regions[0], description=f"edgecc partition {op.name}")
        return self._tflite[op]

    def _partition_vars(self, op) -> dict:
        body, blob, npu = op.regions[0], self._blobs[op], self._npus.get(op)
        part_api = f"{self.api}_{c_identifier(op.name).lower()}"
        common = dict(name=op.name, api=part_api, NAME=part_api.upper(), n_ops=len(body.ops), macs=macs(op),
                      inputs=[_tensor(v) for v in op.operands], outputs=[_tensor(v) for v in op.results],
                      scratch=self.kernel(op).scratch, npu=None)
        if npu is None:
            return dict(common, blob=f"{part_api}_blob", blob_size=len(blob),
                        blob_what=f"partitions/{part_api}.tflite, the partition's int8 TFLite model",
                        blob_init=c_values(np.frombuffer(blob, np.uint8), "u8"))
        # the driver's base addresses: read-only data, the scratch area (twice: the U55's fast scratch is
        # the scratch), then each input and output feature map, which Vela placed inside the scratch area
        regions = [dict(index=r.index, what=r.points_at, size=r.size, offset=r.scratch_offset) for r in npu.regions]
        fmaps = regions[3:]
        if len(regions) > 8:
            raise EdgeccError(f"partition {op.name}: {len(fmaps)} boundary tensors; the Ethos-U has 8 base "
                              "pointers, 3 of them for the weights and scratch (at most 5 inputs and outputs)")
        if [r["what"].split(":")[0] for r in fmaps] != ["input"] * len(op.operands) + ["output"] * len(op.results) \
                or any(r["offset"] is None for r in fmaps):
            raise EdgeccError(f"partition {op.name}: Vela's command stream does not read its inputs and write its "
                              f"outputs in its scratch area ({', '.join(r['what'] for r in regions)})")
        return dict(common, blob=f"{part_api}_command_stream", blob_size=len(npu.command_stream),
                    blob_what=f"Vela's command stream for the Ethos-U driver (partitions/{part_api}.tflite compiled)",
                    blob_init=c_values(np.frombuffer(npu.command_stream, np.uint8), "u8"),
                    npu=dict(weights=f"{part_api}_weights", weights_size=len(npu.read_only),
                             weights_init=c_values(np.frombuffer(npu.read_only, np.uint8), "u8") if npu.read_only else "0",
                             scratch_bytes=npu.scratch_bytes, regions=regions,
                             input_offsets=[r["offset"] for r in fmaps[:len(op.operands)]],
                             output_offsets=[r["offset"] for r in fmaps[len(op.operands):]]))

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
        meta = graph.meta.get("partition", {})
        reasons = meta.get("reasons", {})
        estimates = {p["name"]: p for p in meta.get("partitions", [])}
        entries = []
        for op in graph.ops:
            if op.kind == "partition":
                body = op.regions[0]
                moved = sum(v.type.nbytes for v in op.operands) + sum(v.type.nbytes for v in op.results)
                part_api = f"{api}_{c_identifier(op.name).lower()}"
                entries.append(dict(name=op.name, device="delegate", ops=[o.name or o.results[0].name for o in body.ops],
                                    macs=int(macs(op)), file=f"partitions/{part_api}.tflite",
                                    boundary_bytes=int(moved)))
                if op.name in estimates:  # the partition pass's cost model: the round trip against the CPU
                    est = estimates[op.name]
                    entries[-1]["estimate"] = dict(delegate_us=round(est["accel_seconds"] * 1e6, 3),
                                                   cpu_us=round(est["cpu_seconds"] * 1e6, 3))
                npu = self._npus.get(op)
                if npu is not None:
                    entries[-1]["vela"] = dict(
                        file=f"partitions/{part_api}_vela.tflite", accelerator_config=npu.accelerator,
                        system_config=npu.system_config, memory_mode=npu.memory_mode,
                        npu_operators=npu.npu_operators, cpu_operators=npu.cpu_operators, cycles=npu.cycles,
                        clock_hz=npu.clock_hz, estimated_us=round(npu.cycles / npu.clock_hz * 1e6, 3),
                        sram_bytes=npu.sram_bytes, offchip_flash_bytes=npu.offchip_flash_bytes,
                        command_stream_bytes=len(npu.command_stream), scratch_bytes=npu.scratch_bytes,
                        regions=[dict(index=r.index, points_at=r.points_at, bytes=r.size, scratch_offset=r.scratch_offset)
                                 for r in npu.regions])
                elif self.capabilities.compiler == "vela":
                    entries[-1]["vela"] = None  # not installed: pip install 'edgecc[ethos-u]'
                continue
            layer = op.name or op.results[0].name
            if not entries or entries[-1]["device"] != "cpu":
                entries.append(dict(name=f"cpu{sum(e['device'] == 'cpu' for e in entries)}", device="cpu",
                                    ops=[], macs=0, reasons={}))
            entries[-1]["ops"].append(layer)
            entries[-1]["macs"] += int(macs(op))
            entries[-1]["reasons"][layer] = reasons.get(layer, "runs on the CPU")
        return entries
