"""The Python API vendors embed: load a model, compile it to textual IR or to C.

    graph = load("kws.onnx")                                     # or a .edgeir file
    art = compile("kws.onnx", target="host", outdir="out/kws", emit="c")
    art.graph, art.paths                                         # the compiled graph, files written

User errors raise EdgeccError (one line naming the file, node and op). Outputs are written
atomically: a failure leaves nothing at the output path.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Optional, Union

from edgecc.ir.errors import EdgeccError
from edgecc.ir.graph import Graph

from .output import atomic_directory, write_file_atomic

EMITS = ("ir", "c")


@dataclass
class Artifacts:
    """What compile produced: the graph (lowered for the target when emitting C), the files
    written (absolute paths, none when the IR only went to `ir_text`), and the IR text for emit="ir"."""

    graph: Graph
    paths: list = field(default_factory=list)
    ir_text: Optional[str] = None


def load(path, input_shapes: Optional[dict] = None) -> Graph:
    """An IR graph from an .onnx model (through the frontend) or an .edgeir text file."""
    file = str(path)
    if file.endswith(".edgeir"):
        from edgecc.ir import parse

        if input_shapes:
            raise EdgeccError("--input-shape applies to ONNX models; textual IR has static shapes", file=file)
        try:
            with open(file, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise EdgeccError("no such file", file=file) from None
        except (OSError, UnicodeDecodeError) as e:
            raise EdgeccError(f"cannot read the file: {getattr(e, 'strerror', None) or e}", file=file) from None
        return parse(text, file)
    from .frontend import load_onnx

    return load_onnx(file, input_shapes)


def compile(model: Union[str, os.PathLike, Graph], target: str = "host", outdir: Optional[str] = None,
            name: str = "model", emit: str = "ir", input_shapes: Optional[dict] = None) -> Artifacts:
    """Compile `model` (a path or a Graph) for `target`.

    emit="ir": the imported graph as textual IR, written to `outdir` when given (a file path, or
    NAME.edgeir inside an existing directory). emit="c": the target's pipeline, then its backend
    writes C sources into the directory `outdir`.
    """
    if emit not in EMITS:
        raise EdgeccError(f"unknown output kind '{emit}' (known: {', '.join(EMITS)})")
    if emit == "c":
        from edgecc.backends.registry import get_target

        if outdir is None:
            raise EdgeccError("emitting C needs an output directory")
        get_target(target)  # an unknown target fails before the model is read
    # the pipeline changes a graph in place: a caller's own graph is left as it was
    graph = copy.deepcopy(model) if isinstance(model, Graph) else load(model, input_shapes)
    if emit == "ir":
        from edgecc.ir import print_graph

        text = print_graph(graph)
        if outdir is None:
            return Artifacts(graph, [], text)
        dest = os.path.join(outdir, f"{name}.edgeir") if os.path.isdir(outdir) else outdir
        return Artifacts(graph, [write_file_atomic(dest, text)], text)
    from edgecc.backends.registry import backend_for
    from edgecc.compiler.pipeline import lower

    graph = lower(graph, target)
    dest = os.path.abspath(outdir)
    with atomic_directory(dest) as tmp:
        written = backend_for(target).emit(graph, tmp, name=name) or []
    paths = sorted(os.path.join(dest, os.path.relpath(os.path.join(tmp, p), tmp)) for p in written)
    return Artifacts(graph, paths)
