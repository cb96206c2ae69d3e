"""Each partition's TFLite model run in LiteRT against edgecc's own values at its boundary.

The graph runs in edgecc's interpreter once; at every partition the values crossing into it feed its
.tflite in LiteRT, and LiteRT's results are compared with the interpreter's, in LSBs (the tensors are
int8 codes). This checks the file the accelerator's compiler is handed, partition by partition,
without the accelerator.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from edgecc.ir.errors import EdgeccError
from edgecc.ir.interp import run_op


@dataclass
class PartitionCheck:
    name: str
    file: str
    max_lsb: int  # the largest difference of any output code
    outputs: int

    @property
    def ok(self) -> bool:
        return self.max_lsb <= 1


def litert_interpreter(tflite: bytes):
    """A LiteRT interpreter for a TFLite flatbuffer, tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as e:
        raise EdgeccError("checking partitions needs LiteRT: pip install ai-edge-litert") from e
    # TFLite's own int8 kernels, the ones the MLPerf goldens come from (not the XNNPACK delegate)
    interp = Interpreter(model_content=bytes(tflite),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    return interp


def run_litert(tflite: bytes, inputs: list) -> list:
    """Run a TFLite model once on `inputs` (in its input order); its outputs in order."""
    interp = litert_interpreter(tflite)
    for detail, a in zip(interp.get_input_details(), inputs):
        interp.set_tensor(detail["index"], np.ascontiguousarray(a).reshape(detail["shape"]).astype(detail["dtype"]))
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def boundary_values(graph, inputs: list) -> dict:
    """{partition op: (its operand arrays, its result arrays)} from one interpreter run of `graph`."""
    env = dict(zip(graph.inputs, inputs))
    env.update((c, c.data) for c in graph.constants)
    seen = {}
    for op in graph.ops:
        arrays = [None if v is None else env[v] for v in op.operands]
        outs = run_op(op, arrays)
        env.update(zip(op.results, outs))
        if op.kind == "partition":
            seen[op] = ([a for a in arrays if a is not None], outs)
    return seen


def check_partitions(graph, inputs: list, srcdir: str, files: dict) -> list:
    """PartitionCheck per partition op of `graph`; `files`: op name -> its .tflite path under srcdir."""
    checks = []
    for op, (ins, want) in boundary_values(graph, inputs).items():
        path = os.path.join(srcdir, files[op.name])
        with open(path, "rb") as f:
            got = run_litert(f.read(), ins)
        worst = max((int(np.max(np.abs(g.astype(np.int64).reshape(-1) - w.astype(np.int64).reshape(-1)),
                                initial=0)) for g, w in zip(got, want)), default=0)
        checks.append(PartitionCheck(op.name, files[op.name], worst, len(want)))
    return checks


def format_checks(checks: list) -> str:
    rows = [("partition", "file", "LiteRT vs edgecc", "result")]
    rows += [(c.name, c.file, f"{c.max_lsb} LSB", "ok" if c.ok else "differs (TFLite's rounding)") for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
