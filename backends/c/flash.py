"""The flash a lowered graph's C will take, before it is written: what `--weights auto` fits to `--flash`.

    constant data  exact: every table the C file will hold, as emit() writes it (the kernels' own tables,
                   de-duplicated as emit() does, and the constants some reader takes as they are; 4-bit
                   ones packed);
    code           an estimate from the target file's [costs.code_bytes], sizes measured on the target
                   (bench/code_bytes.py prints them beside the estimate): `model` once (the API functions),
                   per layer `call` (its call in model_invoke) and its kernel template by name (its function
                   and any const struct of its shape), or `layer` for one the table does not list; and each
                   prelude once (the shared kernels a layer calls, e.g. the compact ones). A target without
                   the table counts data only.
"""
from __future__ import annotations

from edgecc.compiler.passes.memory_plan import is_view


def code_table(target) -> dict:
    return dict((getattr(target, "costs", None) or {}).get("code_bytes", {}))


def flash_bytes(backend, graph) -> dict:
    """{"data": bytes, "code": bytes, "total": bytes} of the C `backend` would emit for `graph` (lowered)."""
    from .backend import _constants

    table = code_table(backend.target)
    code = int(table.get("model", 0))
    tables, preludes = {}, set()
    for op in graph.ops:
        if is_view(op):
            continue
        k = backend.kernel(op)
        for suffix, arr in k.consts:
            tables.setdefault((str(arr.dtype), arr.tobytes()), max(arr.nbytes, arr.itemsize))
        for _, _, sk in k.subops:
            for suffix, arr in sk.consts:
                tables.setdefault((str(arr.dtype), arr.tobytes()), max(arr.nbytes, arr.itemsize))
            code += int(table.get(sk.template, table.get("layer", 0)))
        preludes.update(k.prelude)
        code += int(table.get(k.template, table.get("layer", 0))) + int(table.get("call", 0))
    code += sum(int(table.get(p, 0)) for p in preludes)
    needed = backend._needed_constants(graph)
    data = sum(tables.values()) + sum(c.type.nbytes for c in _constants(graph) if c in needed)
    return {"data": int(data), "code": code, "total": int(data) + code}
